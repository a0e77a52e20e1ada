"""What the learners share: the contract the epoch loop in ``fmlearn._base`` calls."""


class PointSolver:
    """A learner whose result is one set of parameters, updated in place epoch by epoch.

    The epoch loop calls ``initial_state(model, groups)`` once per new model, then per
    epoch ``epoch(model, X, y, sample_weight, state, rng)`` (returning the summed
    weighted training loss), ``decision(model, state, X_val)`` for validation scores,
    and finally ``result(model, state)`` for the fitted ``model_``. ``current`` gives
    the parameters a further fit continues from. A learner whose epochs run faster with
    the features renumbered returns the renumbering from ``feature_order`` and names its
    per-feature arrays in ``feature_arrays``; the loop renumbers the rows (or the learner
    stages them renumbered, ``stages``) and those arrays for the epochs and back
    afterwards.
    """

    def stages(self, X, shuffled, features):
        """Whether this learner visits the rows of ``X`` shuffled (when ``shuffled``) and
        in the numbering ``features`` itself, without a copy of them in that order and
        numbering (which the loop makes otherwise): no."""
        return False

    def feature_order(self, X, model, n_epochs):
        """The :class:`~fmlearn.solvers.feature_order.FeatureOrder` to train ``n_epochs``
        epochs over ``X`` in, or None: the features as they are."""
        return None

    def current(self, fitted, state):
        """The parameters to continue from: the fitted model itself."""
        return fitted

    def decision(self, model, state, X, n_jobs=None):
        """Scores of held-out rows under the current parameters."""
        return model.predict_csr(X, n_jobs, check=False)

    def result(self, model, state):
        """The fitted model: the current parameters."""
        return model
