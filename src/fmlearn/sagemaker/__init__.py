"""Amazon SageMaker: the container's ``train`` and ``serve`` entry point
(:mod:`fmlearn.sagemaker.container`, run as ``python -m fmlearn.sagemaker.container``)."""
