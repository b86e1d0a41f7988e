"""Behavioural analyses of a model's responses: error statistics, mixture models, task performance."""
