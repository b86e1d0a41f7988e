"""Analyses of the network's activity and weights: SNR, divisive normalisation, mixed selectivity,
fixed points, weights, trajectories."""
