# The stream worker image: `docker compose up` runs it next to a single-node Kafka.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package needs: tests, benchmarks and caches stay out of the image.
COPY pyproject.toml README.md LICENSE ./
COPY attribution ./attribution
COPY stream ./stream
COPY crm_attribution ./crm_attribution
RUN pip install --no-cache-dir ".[rocksdb]" \
    && useradd --create-home --uid 10001 crm \
    && mkdir -p /var/lib/crm-attribution \
    && chown crm /var/lib/crm-attribution

USER crm
EXPOSE 6066
CMD ["crm-attribution", "worker"]
