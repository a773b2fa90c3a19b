"""``tavaal serve``: a Label Studio ML backend over an image folder, the live labeling loop.

Label Studio calls ``/setup`` and ``/health`` when the backend is connected, ``/predict`` for
pre-annotations (the prediction ``score`` is what its Data Manager sorts by, lowest first), and
``/webhook`` on annotation events. This module speaks that protocol over HTTP (Flask, the
``tavaal[serve]`` extra) and guards it (body size, Host header); ``backend.py`` holds the labels,
the retraining and the state folder.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from tavaal.errors import TavaalError
from tavaal.labeling.backend import Backend, BadRequest

logger = logging.getLogger("tavaal")


MAX_BODY_MB = 256  # a request body limit that holds a large Label Studio batch (--max-body-mb)


def host_names(host: str, allow: tuple[str, ...] = ()) -> set[str] | None:
    """The names a request's Host header may carry (lower case, without the port) for a backend
    listening on ``host``: that address, this machine's loopback names when it is a loopback one,
    the machine's own names when it listens on every address, and ``allow`` (Label Studio in a
    container calls the backend by a name of its own). None: any name (``allow`` has '*').
    A browser page on another site that rebinds its DNS name to this address is refused."""
    if "*" in allow:
        return None
    names = {host.strip("[]").lower(), *(a.lower() for a in allow)}
    if host in ("127.0.0.1", "localhost", "::1"):
        names |= {"127.0.0.1", "localhost", "::1"}
    if host in ("0.0.0.0", "::", ""):
        names |= {"127.0.0.1", "localhost", "::1", socket.gethostname().lower(), socket.getfqdn().lower()}
        with contextlib.suppress(OSError):
            names |= {a[4][0].lower() for a in socket.getaddrinfo(socket.gethostname(), None)}
    return names


def _host_of(header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:9090`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def make_app(backend: Backend, max_body_mb: int = MAX_BODY_MB, allowed_hosts: set[str] | None = None):
    """The Flask app speaking Label Studio's ML backend protocol over ``backend``: bodies over
    ``max_body_mb`` MiB are answered 413, Host headers not in ``allowed_hosts`` 403 (None: any)."""
    from flask import Flask, jsonify, request  # an extra: tavaal[serve]
    from werkzeug.exceptions import RequestEntityTooLarge

    app = Flask("tavaal")
    app.config["MAX_CONTENT_LENGTH"] = max_body_mb * (1 << 20)

    @app.before_request
    def check_host():
        if allowed_hosts is not None and _host_of(request.host) not in allowed_hosts:
            message = (
                f"Host {request.host!r} is not a name this backend serves; start it with "
                "--allow-host NAME to accept it"
            )
            return jsonify({"error": message}), 403
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e):
        message = f"the request body is over {max_body_mb} MiB; raise --max-body-mb to accept it"
        return jsonify({"error": message}), 413

    def body() -> dict[str, Any]:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            raise BadRequest("the request body is nested too deeply", 400) from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object", 400)
        return data

    @app.errorhandler(BadRequest)
    def bad(e: BadRequest):
        return jsonify({"error": str(e)}), e.status

    @app.errorhandler(TavaalError)
    def refused(e: TavaalError):
        return jsonify({"error": str(e)}), 422

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify(backend.health())

    @app.post("/setup")
    def setup():
        return jsonify(backend.setup(body()))

    @app.post("/predict")
    def predict():
        return jsonify(backend.predict(body()))

    @app.post("/webhook")
    def webhook():
        return jsonify(backend.webhook(body())), 201

    @app.post("/train")
    def train():  # older Label Studio versions start training here
        return jsonify(backend.webhook({"action": "START_TRAINING"})), 201

    return app


def url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(
    backend: Backend, host: str, port: int, max_body_mb: int = MAX_BODY_MB, allow_hosts: tuple[str, ...] = ()
) -> None:
    """Run until Ctrl-C or SIGTERM; the state is on disk after every change."""
    from werkzeug.serving import make_server  # Flask's server (installed with it)

    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: reachable from other machines; the default is 127.0.0.1", host)
    app = make_app(backend, max_body_mb, host_names(host, allow_hosts))
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as e:
        backend.close()
        raise TavaalError(
            f"cannot listen on {url_host(host)}:{port} ({e.strerror}); give another --port or --host"
        ) from None
    print(
        f"tavaal ML backend ({backend.method}) on http://{url_host(host)}:{server.server_port}, "
        f"state {backend.state}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        backend.close()
