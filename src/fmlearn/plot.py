"""Plots of fitted estimators (``pip install 'fmlearn[plot]'`` for matplotlib)."""
from sklearn.utils.validation import check_is_fitted


def _validation_label(estimator):
    """How the validation curve is labelled, and the sign that makes it the usual metric."""
    if estimator.scoring is not None:
        return f"validation {estimator.scoring}", 1.0
    if hasattr(estimator, "classes_"):
        return "validation log-loss", -1.0
    return "validation RMSE", -1.0


def learning_curve(estimator, ax=None):
    """Plot the training loss and, when recorded, the validation metric of each epoch.

    The training loss (``loss_curve_``, the mean loss per row) is on the left axis; the
    validation metric (``validation_scores_``, present when ``fit`` had an ``eval_set``
    or early stopping) on the right one: RMSE for regressors and log-loss for
    classifiers, or the ``scoring`` the estimator was given.

    Parameters
    ----------
    estimator : fitted fmlearn estimator
    ax : matplotlib Axes, default=None
        Where to draw; by default a new figure of ``matplotlib.pyplot``.

    Returns
    -------
    ax : matplotlib Axes
        The axes of the training loss; ``ax.figure.savefig(path)`` writes the plot.

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from fmlearn import FMRegressor
    >>> from fmlearn.plot import learning_curve
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 4)); y = X[:, 0] * X[:, 1]
    >>> reg = FMRegressor(n_factors=2, max_iter=10, tol=None, random_state=0)
    >>> reg = reg.fit(X[:150], y[:150], eval_set=(X[150:], y[150:]))
    >>> ax = learning_curve(reg, ax=Figure().subplots())
    >>> [line.get_label() for line in ax.figure.axes[1].get_lines()]
    ['validation RMSE']
    """
    check_is_fitted(estimator, "model_")
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("learning_curve needs matplotlib: pip install "
                              "'fmlearn[plot]'") from exc
        ax = plt.subplots()[1]
    epochs = range(1, len(estimator.loss_curve_) + 1)
    lines = ax.plot(epochs, estimator.loss_curve_, color="C0", label="training loss")
    ax.set_xlabel("epoch" if estimator.solver in ("sgd", "sgda", "bpr") else "iteration")
    ax.set_ylabel("training loss per row")
    if estimator.validation_scores_:
        label, sign = _validation_label(estimator)
        right = ax.twinx()
        lines += right.plot(epochs, [sign * s for s in estimator.validation_scores_],
                            color="C1", label=label)
        right.set_ylabel(label)
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    ax.set_title(f"{type(estimator).__name__} (solver={estimator.solver!r})")
    return ax
