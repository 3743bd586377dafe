# KNAS Studio: one image for the web dashboard and the workers.
#
#   docker build -t knas-studio .
#   docker run --rm knas-studio score --archs 20              # package data, no mount needed
#   docker run --rm -p 127.0.0.1:8501:8501 -v knas-state:/var/lib/knas knas-studio   # knas up
#
# CUDA-capable by default: PyPI's torch wheels bundle the CUDA runtime, so the image runs on GPU
# hosts (with the NVIDIA container toolkit) and on CPU-only hosts alike (about 6.6 GB). For a
# smaller CPU-only image pass the PyTorch CPU index:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t knas-studio:cpu .
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module; the default is the
# official image (an offline build can pass a local one, see README "Docker").
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=
# The product lives in its own virtual environment (also works on bases whose system Python is
# "externally managed", PEP 668). No KNAS_DATA_DIR: data is looked up as --data-dir,
# $KNAS_DATA_DIR, the user cache ($KNAS_CACHE_DIR) and finally the package data in the image.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/knas PATH=/opt/knas/bin:$PATH \
    KNAS_STATE_DIR=/var/lib/knas KNAS_CACHE_DIR=/var/cache/knas \
    KNAS_DATABASE_URL=sqlite:////var/lib/knas/knas.db

# Third-party dependencies first (the heavy, rarely changing layer): the core and every extra but
# `dev` (web, workers, postgres, discovery, nb201), at the versions of requirements.lock (pip's
# constraints: the lock also pins the test tools, which the image leaves out). With
# TORCH_INDEX_URL, the lock's torch and torchvision come from that index first (e.g. +cpu builds,
# which satisfy the lock's pins and need none of the CUDA packages it lists for PyPI's build).
COPY pyproject.toml requirements.lock /tmp/knas-src/
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --upgrade pip \
    && python -c "import tomllib; p = tomllib.load(open('/tmp/knas-src/pyproject.toml', 'rb'))['project']; \
reqs = p['dependencies'] + [r for extra, rs in p['optional-dependencies'].items() if extra != 'dev' for r in rs]; \
print('\n'.join(r for r in reqs if not r.startswith('knas-studio')))" > /tmp/knas-src/runtime.txt \
    && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" \
        $(grep -E '^torch(vision)?==' /tmp/knas-src/requirements.lock | cut -d' ' -f1); fi \
    && pip install -c /tmp/knas-src/requirements.lock -r /tmp/knas-src/runtime.txt

# The product, installed non-editably (wheel build) with its package data (knas_core/bundled:
# NAS-Bench-201 table, CIFAR scoring sets; db migrations; dashboard screens). The build fails
# here if any bundled file is missing from the installed package or differs from its manifest.
COPY . /tmp/knas-src/
RUN pip install --no-deps /tmp/knas-src \
    && rm -rf /tmp/knas-src \
    && cd / && python -c "import hashlib, json, knas_core.paths as p; \
m = json.loads((p.PACKAGE_DATA / 'MANIFEST.json').read_text()); \
bad = [n for n, o in m['outputs'].items() \
       if hashlib.sha256((p.PACKAGE_DATA / n).read_bytes()).hexdigest() != o['sha256']]; \
assert not bad, bad; print('package data ok:', p.PACKAGE_DATA, sorted(m['outputs']))"

# A non-root user with a writable state dir (store, broker, checkpoints) and data cache.
# /app (the working directory) holds the example configurations; it is the user's, so files a
# command writes to the working directory (e.g. `knas up`'s knas-worker.log) can be written.
RUN useradd --system --create-home --home-dir /home/knas --uid 10001 --user-group knas \
    && mkdir -p /var/lib/knas /var/cache/knas /app \
    && chown knas:knas /var/lib/knas /var/cache/knas /app
WORKDIR /app
COPY examples ./examples
USER knas

EXPOSE 8501
# The dashboard's health endpoint (python's urllib: no curl in slim images). Only `web`/`up`
# containers serve it: docker-compose.yml disables the check for the workers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

# The same entry points CI runs directly: `knas worker`, `knas submit`, `knas db upgrade`, `knas web`.
# By default `knas up`: the dashboard and a worker on the embedded store (what the health check
# probes); docker-compose.yml runs workers and the dashboard as separate services instead.
ENTRYPOINT ["knas"]
CMD ["up", "--host", "0.0.0.0"]
