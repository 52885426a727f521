import http.server, sys, threading, time
count = 0
lock = threading.Lock()
first = last = None
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count, first, last
        n = int(self.headers.get('content-length', 0))
        self.rfile.read(n)
        with lock:
            count += 1
            now = time.time()
            first = first or now
            last = now
        self.send_response(200); self.send_header('content-length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def do_GET(self):
        body = f"{count} {first} {last}\n".encode()
        self.send_response(200); self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 256
S(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
