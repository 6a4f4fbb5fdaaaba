# One image for the Ray head, the Ray workers and the API (docker-compose.yml).
# torch from PyPI is a CUDA build (its nvidia-* wheels bring CUDA and cuDNN); the host only needs the NVIDIA
# driver and the NVIDIA container toolkit. The same image runs on CPU-only machines.
# BASE: any Debian-based image with Python 3.11 whose `python` and `pip` are on PATH; scripts/compose-smoke builds
# from a locally made one (debootstrap, a venv at /usr/local) where no image registry can be reached.
ARG BASE=python:3.11-slim

# The runtime requirements (`project.dependencies`) as a file of their own: the large layer below is keyed on its
# content and the lock's, so an edit elsewhere in pyproject.toml (tool settings, package data) keeps it.
FROM ${BASE} AS requirements
COPY pyproject.toml /tmp/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt

FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AFPE_CACHE_DIR=/srv/afpe/cache \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root user; the mount points exist in the image so that new named volumes belong to it.
RUN useradd --create-home --uid 1000 --shell /bin/bash afpe \
    && mkdir -p /srv/afpe/tune /srv/afpe/cache /srv/afpe/artifacts /data \
    && chown afpe:afpe /srv/afpe/tune /srv/afpe/cache /srv/afpe/artifacts

WORKDIR /opt/afpe

# Dependencies first, at the tested versions (requirements.lock): this (large) layer is rebuilt only when the
# runtime requirements or the lock change.
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
COPY requirements.lock ./
RUN pip install -c requirements.lock -r /tmp/requirements.txt && rm /tmp/requirements.txt

# Then the source (small layer), installed as a user installs it: not editable, the shipped specs as package data.
COPY pyproject.toml README.md ./
COPY core ./core
COPY encodings ./encodings
COPY trainers ./trainers
COPY search ./search
COPY service ./service
COPY studies ./studies
RUN pip install --no-deps . && rm -rf build && cd / && afpe --version && ray --version && afpe run --help >/dev/null

USER afpe
WORKDIR /home/afpe
EXPOSE 6379 8265 8000
CMD ["afpe", "--help"]
