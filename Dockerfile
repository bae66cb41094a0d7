# The runtime only (`pip install .`: no emulator, demo or test dependencies, and no devkit code:
# connector_devkit/ is not copied, so the wheel built here has none), as a numeric UID,
# state on the /state volume (or state.url: postgresql://... with no volume at all). The root
# filesystem can be mounted read-only: the connector writes only to the state path and /tmp.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/*.whl

FROM python:3.11-slim
RUN mkdir -p /state /config && chown 10001:10001 /state
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels jomablue-salesforce-connector && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
VOLUME ["/state"]
ENTRYPOINT ["connector"]
CMD ["run", "--drain", "--config", "/config/config.yaml"]
