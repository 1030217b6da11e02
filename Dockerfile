# Hub image: `python main.py run` by default; the same image runs `simulate` and
# `migrate` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_HTTP_PORT=8000 \
    HUB_HTTP_HOST=0.0.0.0 \
    HUB_ENV=production
# Production mode (also the default): `main.py run` refuses to start while a secret
# still has its development default, and the dev admin tokens are not accepted. Set
# every secret and HUB_ADMIN_TOKENS (docker-compose.yml shows which), or
# HUB_ENV=development for a development container.

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code edits keep this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
open('/tmp/requirements.txt', 'w').write('\n'.join(p['dependencies']) + '\n')" \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
# Install the package itself when pyproject.toml makes it buildable; the code runs
# from /app either way (`python main.py` puts /app on sys.path).
RUN pip install --no-deps . >/tmp/pip-install.log 2>&1 \
 || echo "note: package not installable (see pyproject.toml); running from /app"; \
 rm -rf build *.egg-info /tmp/pip-install.log

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin hub \
 && mkdir -p /app/.run \
 && chown -R hub:hub /app/.run
USER hub

EXPOSE 8000 8101 8102 8103 8104 8105 8106 8107 8110 8120 8122 8123 8130 8199 2121
CMD ["python", "main.py", "run"]
