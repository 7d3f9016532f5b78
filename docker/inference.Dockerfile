# Slim offline-inference image: python3 + numpy + onnxruntime, no torch, no toolkit. It runs a
# bundle's own standalone predictor (`predict.py` + `model.onnx`, e.g. an arc bundle) the way a
# competition's offline sandbox does:
#
#   docker build -f docker/inference.Dockerfile -t toolkit-inference .
#   docker run --rm --network none --read-only --tmpfs /tmp \
#     -v "$PWD/submissions/arc/NAME:/bundle:ro" -v "$PWD/io:/io" \
#     toolkit-inference /io/challenges.json /io/submission.json
#
# Same build arguments as the main Dockerfile (BASE_IMAGE, PIP_NO_INDEX + docker/wheels/,
# extra CAs in docker/certs/); builds with BuildKit and with the legacy builder.

# A plain Debian 12 (python3 3.11): onnxruntime's CPU wheel needs no CUDA (bundles needing a
# GPU at inference run in the main image).
ARG BASE_IMAGE=debian:bookworm-20250520-slim

FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Extra CA certificates for a TLS-intercepting proxy (docker/certs/*.crt; empty in git).
COPY docker/certs/ /usr/local/share/ca-certificates/toolkit/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt

# build: a venv with exactly the predictor's runtime.
FROM base AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_NO_INDEX=0
# The versions the toolkit verifies bundles with (keep in step with its environment).
ARG NUMPY_VERSION=2.4.6
ARG ONNXRUNTIME_VERSION=1.31.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_FIND_LINKS=/tmp/wheels
RUN python3 -m venv /opt/venv
# Only the predictor's wheels from the local wheelhouse (it also holds the ~3 GB CUDA torch set
# when build-local.sh filled it). .gitkeep keeps the COPY valid when the wheelhouse is empty;
# pip resolves anything missing from the index unless PIP_NO_INDEX=1.
COPY docker/wheels/.gitkeep docker/wheels/numpy-* docker/wheels/onnxruntime-* \
     docker/wheels/flatbuffers-* docker/wheels/packaging-* docker/wheels/protobuf-* /tmp/wheels/
RUN /opt/venv/bin/pip install "numpy==${NUMPY_VERSION}" "onnxruntime==${ONNXRUNTIME_VERSION}" \
    && /opt/venv/bin/python -c "import numpy, onnxruntime; print(numpy.__version__, onnxruntime.__version__)"

# runtime: the venv, the launcher, a non-root user, nothing writable but /tmp and mounts.
FROM base AS runtime
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="toolkit-inference" \
      org.opencontainers.image.description="Offline bundle predictor: numpy + onnxruntime, no torch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}"
COPY --from=build /opt/venv /opt/venv
COPY docker/inference/run_bundle.py /opt/run_bundle.py
ARG UID=1000
RUN groupadd --gid "${UID}" predictor \
    && useradd --uid "${UID}" --gid predictor --no-create-home --home-dir /tmp --shell /usr/sbin/nologin predictor \
    && mkdir -p /bundle /io && chmod 1777 /io
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    BUNDLE=/bundle
WORKDIR /tmp
USER ${UID}:${UID}
# Arguments go to the bundle's predict.py (after unpacking submission.zip if that is all there is).
ENTRYPOINT ["python3", "/opt/run_bundle.py"]
CMD ["--help"]
