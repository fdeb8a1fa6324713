"""A stand-in for the Anthropic Messages API, for running the real Claude Code client in tests.

It listens on 127.0.0.1, answers POST /v1/messages with scripted STREAMING responses (server-sent
events: message_start, content_block_start, content_block_delta, content_block_stop, message_delta,
message_stop), and records every request body, so a test can assert what the model was sent.

Only requests that offer the Bash tool belong to the session's main loop; each of those takes the
next scripted step.  Any other request (Claude Code's side requests: titles, summaries, token counts)
gets a short text answer and takes no step.

    with Standin([bash("ls"), text("done")]) as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        ...run claude -p...
        api.main_requests()      # the recorded request bodies of the main loop
"""

import http.server
import itertools
import json
import threading

_ids = itertools.count(1)


def bash(command, description="run a command"):
    """A scripted step: the model calls the Bash tool with `command`."""
    return {"tool": "Bash", "input": {"command": command, "description": description}}


def text(words):
    """A scripted step: the model answers with text and ends its turn."""
    return {"text": words}


def _sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_events(step, model="claude-standin"):
    """The SSE byte chunks of one assistant message for a scripted step."""
    n = next(_ids)
    yield _sse("message_start", {"type": "message_start", "message": {
        "id": f"msg_standin_{n}", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}}})
    if "tool" in step:
        yield _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": f"toolu_standin_{n}", "name": step["tool"], "input": {}}})
        raw = json.dumps(step["input"])
        for i in range(0, len(raw), 40):     # in pieces, as the real API streams partial JSON
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "input_json_delta", "partial_json": raw[i:i + 40]}})
        stop = "tool_use"
    else:
        yield _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": step["text"]}})
        stop = "end_turn"
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": 20}})
    yield _sse("message_stop", {"type": "message_stop"})


def plain_message(words, model="claude-standin"):
    """A non-streaming Messages API response."""
    return {"id": f"msg_standin_{next(_ids)}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": words}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5}}


def is_main_loop(body):
    return any(isinstance(t, dict) and t.get("name") == "Bash" for t in body.get("tools") or [])


class Standin:
    """The server.  `script`: a list of steps, or a callable(request_body, index) -> step; a list
    that runs out answers text("done")."""

    def __init__(self, script):
        self.script = script
        self.requests = []          # (path, body) of every request, in order
        self.lock = threading.Lock()
        self.steps_taken = 0
        self.hooks = []             # callables(index, body) run before a main-loop step is answered
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send_json(self, obj, code=200):
                raw = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                self._send_json({})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                path = self.path.split("?", 1)[0]
                with standin.lock:
                    standin.requests.append((path, body))
                if path.endswith("/count_tokens"):
                    return self._send_json({"input_tokens": 100})
                if not path.endswith("/v1/messages"):
                    return self._send_json({})
                step = standin.next_step(body) if is_main_loop(body) else text("ok")
                if not body.get("stream"):
                    return self._send_json(plain_message(step.get("text", "ok")))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in stream_events(step, body.get("model") or "claude-standin"):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_step(self, body):
        with self.lock:
            i = self.steps_taken
            self.steps_taken += 1
        for hook in self.hooks:
            hook(i, body)
        if callable(self.script):
            return self.script(body, i)
        return self.script[i] if i < len(self.script) else text("done")

    def main_requests(self):
        with self.lock:
            return [b for p, b in self.requests if p.endswith("/v1/messages") and is_main_loop(b)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def request_text(body):
    """Everything the model was sent in one request (system prompt and messages) as one string."""
    parts = []

    def walk(x):
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                if k not in ("tools", "input_schema", "cache_control"):
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(body.get("system"))
    walk(body.get("messages"))
    return "\n".join(parts)


def tool_results(body):
    """The text of every tool_result block in a request's messages, in order."""
    out = []
    for m in body.get("messages") or []:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                c = block.get("content")
                if isinstance(c, list):
                    c = "\n".join(x.get("text", "") for x in c if isinstance(x, dict))
                out.append(str(c or ""))
    return out
