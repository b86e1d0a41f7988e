"""The foundations every analysis stands on: the agent protocol, trials from a run (behavioural
and neural), the task helpers, circular statistics, PCA and the JSON form of results."""
