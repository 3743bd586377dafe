# KNAS Studio: one image for the web dashboard and the workers.
# CUDA-capable: PyPI's torch wheels bundle the CUDA runtime, so this runs on GPU hosts
# (with the NVIDIA container toolkit) and on CPU-only hosts alike.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KNAS_STATE_DIR=/var/lib/knas KNAS_DATA_DIR=/data
WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY knas_core ./knas_core
COPY knas_cli ./knas_cli
COPY db ./db
COPY tasks ./tasks
COPY app ./app
COPY examples ./examples
RUN pip install --no-deps . && mkdir -p /var/lib/knas /data

# The same entry points CI runs directly: `knas worker`, `knas submit`, `knas db upgrade`, `knas web`.
ENTRYPOINT ["knas"]
CMD ["worker", "--queues", "score,train"]
