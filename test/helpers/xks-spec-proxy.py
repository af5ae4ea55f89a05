#!/usr/bin/python3
"""An External Key Store proxy written by the tests, from AWS's "External Key
Store (XKS) Proxy API Specification" v1 alone (github.com/aws/aws-kms-xksproxy-
api-spec), as an oracle for kmsvol's XKS client. It shares no code with kmsvol:
its SigV4 verifier is the AWS General Reference's algorithm written out with
hashlib and hmac, and its key manager is AES-256-GCM from Debian's
python3-cryptography with keys in this process's memory.

usage: xks-spec-proxy.py --uri-path /P/kms/xks/v1 --access-key-id AK
           --secret-access-key SK --region R [--key ID]...
Listens on 127.0.0.1, an ephemeral port, and prints "port N" when ready.

Keys named at start are ENABLED AES_256 keys for ENCRYPT and DECRYPT, except:
  disabled-*  keyStatus DISABLED (encrypt/decrypt: InvalidStateException)
  signonly-*  keyUsage SIGN, VERIFY (encrypt/decrypt: InvalidKeyUsageException)
  rsa-*       keySpec RSA_2048
Every ciphertext carries ciphertextMetadata b"spec-v1", framed into the AAD
as the specification's Encrypt section says.

For fault injection, POST /__control (unsigned, tests only) with JSON:
  {"canned": {"status": N, "body": "raw text"}}  answer the next request so
  {"delayMs": N}                                  wait before answering
  {"ekmHealth": "ACTIVE"|"DEGRADED"|"UNAVAILABLE"}
  {"reset": true}
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_PLAINTEXT = 4300
MAX_AAD = 8192
METADATA = b"spec-v1"

STATUS = {
    "ValidationException": 400,
    "InvalidStateException": 400,
    "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400,
    "AuthenticationFailedException": 401,
    "AccessDeniedException": 403,
    "KeyNotFoundException": 404,
    "InvalidUriPathException": 404,
    "ThrottlingException": 429,
    "InternalException": 500,
    "UnsupportedOperationException": 501,
    "DependencyTimeoutException": 503,
}


class XksFault(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


def b64(field, body, required=True):
    v = body.get(field)
    if v is None:
        if required:
            raise XksFault("ValidationException", f"{field} is required")
        return None
    if not isinstance(v, str):
        raise XksFault("ValidationException", f"{field} must be a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise XksFault("ValidationException", f"{field} is not base64")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Proxy:
    def __init__(self, args):
        self.uri_path = args.uri_path
        self.access_key_id = args.access_key_id
        self.secret = args.secret_access_key
        self.region = args.region
        self.keys = {k: AESGCM.generate_key(bit_length=256) for k in args.key}
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.canned = None
        self.delay_ms = 0
        self.ekm_health = "ACTIVE"

    # --- Appendix A: SigV4 with service kms-xks-proxy -------------------------
    def authenticate(self, method, raw_path, headers, body):
        auth = headers.get("authorization", "")
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})", auth.strip())
        if not m:
            raise XksFault("AuthenticationFailedException", "no AWS4-HMAC-SHA256 Authorization header")
        scope = m.group(1).split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise XksFault("AuthenticationFailedException", "malformed credential scope")
        key_id, day, region, service, _ = scope
        if key_id != self.access_key_id:
            raise XksFault("AuthenticationFailedException", "unknown access key id")
        if service != "kms-xks-proxy" or region != self.region:
            raise XksFault("AuthenticationFailedException", "credential scope names another service or region")
        signed = m.group(2).split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            raise XksFault("AuthenticationFailedException", "host and x-amz-date must be signed")
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise XksFault("AuthenticationFailedException", "bad x-amz-date")
        if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300 or amz_date[:8] != day:
            raise XksFault("AuthenticationFailedException", "request time outside five minutes")
        canonical_headers = ""
        for h in signed:
            if h not in headers:
                raise XksFault("AuthenticationFailedException", f"signed header {h} missing")
            canonical_headers += h + ":" + " ".join(headers[h].strip().split()) + "\n"
        canonical = "\n".join([method, raw_path, "", canonical_headers, ";".join(signed), sha256_hex(body)])
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(scope[1:]), sha256_hex(canonical.encode())])
        k = hmac256(("AWS4" + self.secret).encode(), day)
        k = hmac256(k, region)
        k = hmac256(k, service)
        k = hmac256(k, "aws4_request")
        expected = hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, m.group(3)):
            raise XksFault("AuthenticationFailedException", "signature mismatch")

    # --- the four operations ---------------------------------------------------
    def metadata_of(self, key_id):
        spec = "RSA_2048" if key_id.startswith("rsa-") else "AES_256"
        usage = ["SIGN", "VERIFY"] if key_id.startswith("signonly-") else ["ENCRYPT", "DECRYPT"]
        status = "DISABLED" if key_id.startswith("disabled-") else "ENABLED"
        return {"keySpec": spec, "keyUsage": usage, "keyStatus": status}

    def key_for(self, key_id, op):
        if key_id not in self.keys:
            raise XksFault("KeyNotFoundException", f"no key {key_id}")
        meta = self.metadata_of(key_id)
        if meta["keyStatus"] != "ENABLED":
            raise XksFault("InvalidStateException", "key disabled")
        if op.upper() not in meta["keyUsage"] or meta["keySpec"] != "AES_256":
            raise XksFault("InvalidKeyUsageException", f"key does not {op}")
        return AESGCM(self.keys[key_id])

    @staticmethod
    def framed_aad(aad, md):
        aad = aad or b""
        md = md or b""
        return len(aad).to_bytes(2, "big") + aad + len(md).to_bytes(1, "big") + md

    def handle(self, op, key_id, body):
        md = body.get("requestMetadata")
        if not isinstance(md, dict) or not isinstance(md.get("kmsRequestId"), str) or not isinstance(md.get("kmsOperation"), str):
            raise XksFault("ValidationException", "requestMetadata with kmsRequestId and kmsOperation is required")
        if op == "health":
            return {
                "xksProxyFleetSize": 1,
                "xksProxyVendor": "kmsvol tests",
                "xksProxyModel": "xks-spec-proxy.py 1",
                "ekmVendor": "python3-cryptography",
                "ekmFleetDetails": [{"id": "ekm-1", "model": "AESGCM in memory", "healthStatus": self.ekm_health}],
            }
        if not isinstance(md.get("awsPrincipalArn"), str):
            raise XksFault("ValidationException", "requestMetadata.awsPrincipalArn is required")
        if op == "metadata":
            if key_id not in self.keys:
                raise XksFault("KeyNotFoundException", f"no key {key_id}")
            return self.metadata_of(key_id)
        if not isinstance(md.get("kmsKeyArn"), str):
            raise XksFault("ValidationException", "requestMetadata.kmsKeyArn is required")
        if body.get("encryptionAlgorithm") != "AES_GCM":
            raise XksFault("ValidationException", "encryptionAlgorithm must be AES_GCM")
        aad = b64("additionalAuthenticatedData", body, required=False)
        if aad is not None and len(aad) > MAX_AAD:
            raise XksFault("UnsupportedOperationException", "AAD above 8192 bytes")
        if op == "encrypt":
            plaintext = b64("plaintext", body)
            if len(plaintext) > MAX_PLAINTEXT:
                raise XksFault("UnsupportedOperationException", "plaintext above 4300 bytes")
            cdiv_alg = body.get("ciphertextDataIntegrityValueAlgorithm")
            if cdiv_alg is not None and cdiv_alg != "SHA_256":
                raise XksFault("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
            gcm = self.key_for(key_id, "encrypt")
            iv = os.urandom(12)
            sealed = gcm.encrypt(iv, plaintext, self.framed_aad(aad, METADATA))
            ct, tag = sealed[:-16], sealed[-16:]
            out = {
                "ciphertext": base64.b64encode(ct).decode(),
                "ciphertextMetadata": base64.b64encode(METADATA).decode(),
                "initializationVector": base64.b64encode(iv).decode(),
                "authenticationTag": base64.b64encode(tag).decode(),
            }
            if cdiv_alg is not None:
                digest = hashlib.sha256((aad or b"") + METADATA + iv + ct + tag).digest()
                out["ciphertextDataIntegrityValue"] = base64.b64encode(digest).decode()
            return out
        # decrypt
        ct = b64("ciphertext", body)
        iv = b64("initializationVector", body)
        tag = b64("authenticationTag", body)
        md_bytes = b64("ciphertextMetadata", body, required=False)
        if len(ct) > MAX_PLAINTEXT:
            raise XksFault("UnsupportedOperationException", "ciphertext above 4300 bytes")
        if len(iv) not in (12, 16) or len(tag) != 16:
            raise XksFault("InvalidCiphertextException", "IV must be 12 or 16 bytes, tag 16")
        gcm = self.key_for(key_id, "decrypt")
        try:
            pt = gcm.decrypt(iv, ct + tag, self.framed_aad(aad, md_bytes))
        except Exception:
            raise XksFault("InvalidCiphertextException", "authentication failed")
        return {"plaintext": base64.b64encode(pt).decode()}


def make_handler(proxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer (headers and body), without Nagle's delay on keep-alive connections.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def send(self, status, obj=None, raw=None):
            data = raw.encode() if raw is not None else json.dumps(obj).encode() if obj is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def fault(self, f):
            self.send(STATUS[f.name], {"errorName": f.name, "errorMessage": f.message[:200]})

        def route(self):
            prefix = proxy.uri_path
            if self.path == prefix + "/health":
                return "health", None
            m = re.fullmatch(re.escape(prefix) + r"/keys/([A-Za-z0-9._-]{1,128})/(metadata|encrypt|decrypt)", self.path)
            if m:
                return m.group(2), m.group(1)
            return None, None

        def do_GET(self):
            op, _ = self.route()
            if op:
                self.send(405, {"errorName": "ValidationException", "errorMessage": "use POST"})
            else:
                self.fault(XksFault("InvalidUriPathException", "no such path"))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path == "/__control":
                ctl = json.loads(body)
                with proxy.lock:
                    if ctl.get("reset"):
                        proxy.reset()
                    if "canned" in ctl:
                        proxy.canned = ctl["canned"]
                    if "delayMs" in ctl:
                        proxy.delay_ms = ctl["delayMs"]
                    if "ekmHealth" in ctl:
                        proxy.ekm_health = ctl["ekmHealth"]
                return self.send(200, {})
            with proxy.lock:
                canned, proxy.canned = proxy.canned, None
                delay = proxy.delay_ms
            if delay:
                time.sleep(delay / 1000)
            if canned is not None:
                return self.send(canned["status"], raw=canned["body"])
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                proxy.authenticate("POST", self.path, headers, body)
                op, key_id = self.route()
                if not op:
                    raise XksFault("InvalidUriPathException", "no such path")
                try:
                    req = json.loads(body)
                except ValueError:
                    raise XksFault("ValidationException", "body is not JSON")
                if not isinstance(req, dict):
                    raise XksFault("ValidationException", "body is not a JSON object")
                self.send(200, proxy.handle(op, key_id, req))
            except XksFault as f:
                self.fault(f)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--uri-path", required=True)
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--secret-access-key", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--key", action="append", default=[])
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Proxy(args)))
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
