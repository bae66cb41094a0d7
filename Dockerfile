# Build a wheel, install it into a slim runtime; run as a non-root user; state on a volume.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 connector && mkdir -p /state /config && chown connector /state
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER connector
VOLUME ["/state"]
ENTRYPOINT ["connector"]
CMD ["run", "--drain", "--config", "/config/config.yaml"]
