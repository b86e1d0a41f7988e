"""Shipped configurations, installed as the resource package ``vwm_agents.configs``."""
