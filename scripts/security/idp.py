# Minimal OpenID Provider for scripts/security/replay-review.sh: discovery + JWKS on loopback,
# and `python3 idp.py sign ISSUER JSON` mints an RS256 token with the key in key.pem.
import base64, json, sys, time, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.hazmat.primitives import serialization, hashes
here = os.path.dirname(os.path.abspath(__file__))
kp = os.path.join(os.environ.get("IDP_KEY_DIR", here), "key.pem")
if not os.path.exists(kp):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(kp, "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
key = serialization.load_pem_private_key(open(kp, "rb").read(), None)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def n2b(n): return n.to_bytes((n.bit_length() + 7) // 8, "big")
if sys.argv[1] == "sign":
    iss, claims = sys.argv[2], json.loads(sys.argv[3])
    now = int(time.time())
    c = {"iss": iss, "iat": now, "exp": now + 600}; c.update(claims)
    h = b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode()) + "." + b64(json.dumps(c).encode())
    print(h + "." + b64(key.sign(h.encode(), padding.PKCS1v15(), hashes.SHA256())))
    sys.exit(0)
port = int(sys.argv[2]); iss = f"http://127.0.0.1:{port}/realms/itl"
pub = key.public_key().public_numbers()
jwks = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64(n2b(pub.n)), "e": b64(n2b(pub.e))}]}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = {"/realms/itl/.well-known/openid-configuration": {"issuer": iss, "jwks_uri": iss + "/jwks"},
                "/realms/itl/jwks": jwks}.get(self.path)
        if body is None: self.send_response(404); self.end_headers(); return
        out = json.dumps(body).encode()
        self.send_response(200); self.send_header("content-type", "application/json"); self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
HTTPServer(("127.0.0.1", port), H).serve_forever()
