# fmlearn for Amazon SageMaker's bring-your-own-container contract:
#   docker build -t fmlearn .
#   docker run IMAGE train     # reads /opt/ml/input, writes /opt/ml/model (or /opt/ml/output/failure)
#   docker run IMAGE serve     # serves /opt/ml/model on port 8080
# See docs/guide/sagemaker.md, "Container".
FROM python:3.11-slim

# The kernels compiled at build time live in NUMBA_CACHE_DIR. With a read-only root file
# system the entry point copies them into a writable temporary folder first.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/opt/fmlearn/numba-cache

COPY pyproject.toml README.md LICENSE CHANGELOG.md MANIFEST.in /tmp/fmlearn/
COPY src /tmp/fmlearn/src
RUN pip install "/tmp/fmlearn[serve]" && rm -rf /tmp/fmlearn

# A user without a login or a home; it owns nothing but the kernel cache.
RUN useradd --system --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin fmlearn \
    && mkdir -p "$NUMBA_CACHE_DIR" && chown fmlearn:fmlearn "$NUMBA_CACHE_DIR"
USER fmlearn
# Every kernel, float32 and float64, the file readers and the server's request path.
RUN fmlearn warmup --all && python -m fmlearn.sagemaker.container warmup

EXPOSE 8080
ENTRYPOINT ["python", "-m", "fmlearn.sagemaker.container"]
