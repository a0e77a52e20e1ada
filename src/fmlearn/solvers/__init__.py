"""Learners: each turns a model and training data into a better model, one pass per call."""
