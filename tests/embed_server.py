"""A small embedding server for the tests: a real model (WordLlama, whose 256-dimension weights ship
inside its PyPI wheel, loaded offline) behind the two HTTP protocols clambake speaks:

    POST /api/embed       Ollama:  {"model", "input": str | [str]} -> {"model", "embeddings": [[...]]}
    POST /v1/embeddings   OpenAI:  {"model", "input": str | [str]} -> {"object": "list", "data": [
                                    {"object": "embedding", "index": i, "embedding": [...]}], "model", "usage"}

Knobs for the tests (attributes of the running EmbedServer):
    tls         (constructor) serve https with this certificate and key
    api_key     when set, /v1/embeddings requires "Authorization: Bearer <key>" (401 otherwise)
    delay       seconds to wait before answering (a slow provider)
    models      model names it serves (others: 404 like Ollama's "model not found")
    requests    the JSON bodies received, for assertions

Run alone: python tests/embed_server.py [port]   (prints the base URL)
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MODEL = None
_MODEL_LOCK = threading.Lock()


def load_model():
    """WordLlama's bundled model, without network access."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            import wordllama
            from wordllama import WordLlama
            _MODEL = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        return _MODEL


class _Handler(BaseHTTPRequestHandler):
    server_version = "clambake-test-embed/1"

    def log_message(self, *args):      # quiet
        pass

    def _send(self, code, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        srv = self.server.owner
        try:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._send(400, {"error": "invalid JSON"})
        srv.requests.append({"path": self.path, "body": data,
                             "authorization": self.headers.get("Authorization")})
        if srv.delay:
            time.sleep(srv.delay)
        openai = self.path.rstrip("/") == "/v1/embeddings"
        if not openai and self.path.rstrip("/") != "/api/embed":
            return self._send(404, {"error": "not found"})
        if openai and srv.api_key and self.headers.get("Authorization") != "Bearer " + srv.api_key:
            return self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        model = data.get("model")
        if model not in srv.models:
            msg = f'model "{model}" not found, try pulling it first'
            return self._send(404, {"error": {"message": msg}} if openai else {"error": msg})
        texts = data.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self._send(400, {"error": "input must be a string or a list of strings"})
        vectors = load_model().embed(texts, norm=True).tolist() if texts else []
        if openai:
            return self._send(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0},
                                    "data": [{"object": "embedding", "index": i, "embedding": v}
                                             for i, v in enumerate(vectors)]})
        return self._send(200, {"model": model, "embeddings": vectors})


class EmbedServer:
    def __init__(self, port=0, models=("nomic-embed-text", "wordllama-256"), tls=None):
        """tls: (certificate file, key file) to serve https on localhost instead of http."""
        load_model()
        self.models = set(models)
        self.api_key = None
        self.delay = 0.0
        self.requests = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://localhost:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    s = EmbedServer(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(s.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()
