# The toolkit's CUDA image: `docker run --gpus all IMAGE run eeg2025/c1-baseline`.
#
#   docker build -t toolkit:cuda .                                   # GitHub, any online box
#   docker build -t toolkit:cpu --build-arg BASE_IMAGE=debian:bookworm-20250520-slim \
#     --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu .   # CPU variant
#   docker/build-local.sh toolkit:local                              # no registry reachable
#
# Builds with BuildKit and with the legacy builder (DOCKER_BUILDKIT=0): no `RUN --mount`, no
# `# syntax=` line (that would pull a frontend image). Air-gapped and proxy builds: extra CA
# certificates go in docker/certs/*.crt, a local wheelhouse in docker/wheels/ with
# `--build-arg PIP_NO_INDEX=1` (docker/README.md).

# Base image: NVIDIA's CUDA image for torch 2.14.1's CUDA (13.0), pinned, in its minimal `base`
# flavour: Ubuntu 24.04 (python3 3.12) + the CUDA runtime stub and driver-compat package, and
# the NVIDIA_REQUIRE_CUDA check that makes `docker run --gpus all` refuse a too-old driver with
# a clear message. Not `-runtime`/`-cudnn-runtime`: the torch wheels from PyPI carry their own
# cuBLAS, cuDNN and NCCL (the nvidia-* wheels), so those would ship CUDA twice (~3 GB more).
# Pin a digest (nvidia/cuda@sha256:...) where builds must be bit-for-bit. Any Debian/Ubuntu
# base with apt and a python3 >= 3.11 works: the CPU variant uses debian:bookworm-*-slim
# (python3 3.11), build-local.sh a Debian base made with debootstrap.
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04

# ---------------------------------------------------------------------------------------------
# base: python3 and the CA certificates, shared by the build and the runtime stages.
FROM ${BASE_IMAGE} AS base

# No prompts from apt; no .pyc files or buffered output in containers.
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# python3 from the distribution (3.12 on Ubuntu 24.04, 3.11 on bookworm) and the CA store; libgomp for torch's CPU
# threads is pulled in by the wheels' own deps, nothing else is needed at run time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Extra CA certificates (a TLS-intercepting proxy, a private S3 endpoint): every docker/certs/*.crt
# joins the system store, used by pip at build time and by S3/HTTPS access at run time. The
# folder holds only a README in git, so a normal build adds nothing.
COPY docker/certs/ /usr/local/share/ca-certificates/toolkit/
RUN update-ca-certificates
# pip (certifi) and requests/botocore read their own bundles unless told to use the system one.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# ---------------------------------------------------------------------------------------------
# build: a virtual environment in /opt/venv with torch and the package; only it is copied on.
FROM base AS build

# venv/ensurepip live in python3-venv on Debian; the build stage is thrown away, so no cleanup
# beyond the apt lists.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*

# Where pip looks. Defaults: PyPI only (CUDA torch). CPU variant: PIP_EXTRA_INDEX_URL=
# https://download.pytorch.org/whl/cpu (torch 2.14.1+cpu wins over 2.14.1). Air-gapped:
# PIP_NO_INDEX=1 and the wheels in docker/wheels/. ARGs reach RUN as environment variables,
# which pip reads as its options.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_NO_INDEX=0
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_FIND_LINKS=/tmp/wheels \
    PIP_DEFAULT_TIMEOUT=180

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The local wheelhouse (empty in git: a .gitkeep). Without `RUN --mount` it becomes a layer of
# this throw-away stage only; the runtime image never sees it.
COPY docker/wheels/ /tmp/wheels/

# torch first, in its own layer: the biggest download, and it changes only with the pins.
RUN pip install "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# Then the package (non-editable: the source tree is not copied on) with its recipes, which
# setuptools installs as data files under /opt/venv/share/toolkit/recipes.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY toolkit/ toolkit/
COPY recipes/ recipes/
RUN pip install . \
    && pip check \
    && python -c "import toolkit, torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# ---------------------------------------------------------------------------------------------
# runtime: python3 + the venv, a non-root user, the TOOLKIT_* folders.
FROM base AS runtime

ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="toolkit" \
      org.opencontainers.image.description="Competition toolkit: recipes -> trained runs -> verified submission bundles" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}"

COPY --from=build /opt/venv /opt/venv

# The non-root user (uid 1000 by default). `--user UID:GID` with any other uid works too: the
# working folders are world-writable (sticky, like /tmp) and HOME-like state goes to /tmp.
# Ubuntu >= 23.04 images (nvidia/cuda:*-ubuntu24.04 too) already have `ubuntu` as uid/gid 1000:
# that user and group make way for `toolkit`.
ARG UID=1000
RUN taken="$(getent passwd "${UID}" || true)" \
    && if [ -n "${taken}" ]; then userdel "${taken%%:*}"; fi \
    && taken="$(getent group "${UID}" || true)" \
    && if [ -n "${taken}" ]; then groupdel "${taken%%:*}"; fi \
    && groupadd --gid "${UID}" toolkit \
    && useradd --uid "${UID}" --gid toolkit --no-create-home --home-dir /tmp --shell /usr/sbin/nologin toolkit \
    && mkdir -p /data /cache /work/runs /work/submissions \
    && chmod 1777 /data /cache /work /work/runs /work/submissions

# Paths: data (mount read-only), cache, and one work folder for runs and submissions; a single
# `-v $PWD:/work` keeps a run's outputs. HOME and every tool's config/cache folder point at /tmp,
# so a uid without a passwd entry and `--read-only --tmpfs /tmp` both work. The NVIDIA_* pair
# asks nvidia-container-toolkit for the driver's compute libraries when the host has a GPU.
ENV PATH=/opt/venv/bin:$PATH \
    TOOLKIT_DATA_DIR=/data \
    TOOLKIT_CACHE_DIR=/cache \
    TOOLKIT_RUNS_DIR=/work/runs \
    TOOLKIT_SUBMISSIONS_DIR=/work/submissions \
    TOOLKIT_DEVICE=auto \
    TOOLKIT_IMAGE_VERSION=${VERSION} \
    TOOLKIT_IMAGE_REVISION=${VCS_REF} \
    TOOLKIT_IMAGE_CREATED=${BUILD_DATE} \
    HOME=/tmp \
    USER=toolkit \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    MPLCONFIGDIR=/tmp/matplotlib \
    MNE_DONTWRITE_HOME=true \
    NUMBA_CACHE_DIR=/tmp/numba \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    TRITON_CACHE_DIR=/tmp/triton \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Anonymous volumes unless mounted: outputs survive the container, and `--read-only` still
# has writable work folders.
VOLUME ["/data", "/cache", "/work"]
WORKDIR /work
# Numeric, so `runAsNonRoot` checks (Kubernetes) can tell it is not root without /etc/passwd.
USER ${UID}:${UID}

# Every recipe in one command: `docker run IMAGE run eeg2025/c1-baseline --smoke`.
# (`docker run --init` adds a zombie-reaping PID 1; training handles SIGTERM itself.)
ENTRYPOINT ["toolkit"]
CMD ["--help"]
