"""http.server on Kiln: answers GET / with one line. With --self-test it asks itself once, over
the kernel's loopback, and exits."""
import http.server
import sys
import threading
import urllib.request


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from python on kiln\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Hello)
print(f"serving on {port}", flush=True)
if "--self-test" in sys.argv:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(urllib.request.urlopen(f"http://127.0.0.1:{port}/").read().decode(), end="")
else:
    server.serve_forever()
