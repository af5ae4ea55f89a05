"""Requests signed by botocore's own SigV4 signer, each with one thing changed.

Usage: sigv4_refusals.py ENDPOINT  (credentials in AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY; a session in SESSION_ACCESS_KEY_ID, SESSION_SECRET,
SESSION_TOKEN). Prints one JSON object per case: its name, the HTTP status and
the error's __type and message. Every tampered request is a CreateKey whose
Description is the case's name, so the caller can check that none was made.
"""
import datetime
import json
import os
import sys
import urllib.error
import urllib.request
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ENDPOINT = sys.argv[1]
REGION = "us-east-1"
ALICE = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
SESSION = Credentials(os.environ["SESSION_ACCESS_KEY_ID"], os.environ["SESSION_SECRET"], os.environ["SESSION_TOKEN"])


class UnsignedPayload(SigV4Auth):
    def payload(self, request):
        return "UNSIGNED-PAYLOAD"


def sign(body, creds=ALICE, service="kms", region=REGION, auth_cls=SigV4Auth, when=None, target="TrentService.CreateKey", extra=None):
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **(extra or {})})
    auth = auth_cls(creds, service, region)
    if when is None:
        auth.add_auth(req)
    else:
        class Fixed(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when
        with mock.patch("botocore.auth.datetime.datetime", Fixed):
            auth.add_auth(req)
    return req


def send(req, body=None):
    prepared = req.prepare()
    data = prepared.body if body is None else body
    if isinstance(data, str):
        data = data.encode()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    r = urllib.request.Request(prepared.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(r) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def desc(name):
    return json.dumps({"Description": name})


cases = {}
cases["baseline-list-keys"] = send(sign("{}", target="TrentService.ListKeys"))
cases["body-changed-after-signing"] = send(sign(desc("signed-body")), desc("body-changed-after-signing"))
unsigned = sign(desc("x"), auth_cls=UnsignedPayload, extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
cases["unsigned-payload"] = send(unsigned, desc("unsigned-payload"))
cases["scope-service-s3"] = send(sign(desc("scope-service-s3"), service="s3"))
cases["scope-service-dynamodb"] = send(sign(desc("scope-service-dynamodb"), service="dynamodb"))
other_region = sign(desc("scope-region-changed"))
other_region.headers.replace_header("Authorization", other_region.headers["Authorization"].replace("/us-east-1/", "/us-west-2/"))
cases["scope-region-changed"] = send(other_region)
cases["made-up-session-token"] = send(sign(desc("made-up-session-token"), creds=Credentials(ALICE.access_key, ALICE.secret_key, "FQoGZXIvYXdzEMadeUpToken")))
forged = Credentials(SESSION.access_key, SESSION.secret_key, SESSION.token[:-4] + "AAAA")
cases["forged-session-token"] = send(sign(desc("forged-session-token"), creds=forged))
cases["session-without-token"] = send(sign(desc("session-without-token"), creds=Credentials(SESSION.access_key, SESSION.secret_key)))
cases["wrong-secret"] = send(sign(desc("wrong-secret"), creds=Credentials(ALICE.access_key, ALICE.secret_key + "x")))
cases["unknown-access-key"] = send(sign(desc("unknown-access-key"), creds=Credentials("AKIAUNKNOWN000000000", "secret")))
now = datetime.datetime.utcnow()
cases["stale-timestamp"] = send(sign(desc("stale-timestamp"), when=now - datetime.timedelta(minutes=10)))
cases["future-timestamp"] = send(sign(desc("future-timestamp"), when=now + datetime.timedelta(minutes=10)))
cases["session-valid"] = send(sign("{}", creds=SESSION, target="TrentService.ListKeys"))
cases["dryrun-create-grant"] = send(sign(json.dumps({"KeyId": os.environ["KEY_ID"], "GranteePrincipal": "arn:aws:iam::372922107867:user/bob", "Operations": ["Decrypt"], "DryRun": True}), target="TrentService.CreateGrant"))
# The operation selector must be signed: sign without X-Amz-Target, then add it.
untargeted = AWSRequest(method="POST", url=ENDPOINT + "/", data=json.dumps({"KeyId": os.environ["KEY_ID"]}), headers={"Content-Type": "application/x-amz-json-1.1"})
SigV4Auth(ALICE, "kms", REGION).add_auth(untargeted)
untargeted.headers["X-Amz-Target"] = "TrentService.DisableKey"
cases["unsigned-target"] = send(untargeted)
doubled = sign(desc("duplicate-signature-field"))
doubled.headers.replace_header("Authorization", doubled.headers["Authorization"] + ", Signature=" + "0" * 64)
cases["duplicate-signature-field"] = send(doubled)
cases["deep-nesting"] = send(sign('{"Description": "deep-nesting", "Tags": ' + "[" * 20000 + "]" * 20000 + "}"))
cases["grantee-star"] = send(sign(json.dumps({"KeyId": os.environ["KEY_ID"], "GranteePrincipal": "*", "Operations": ["Decrypt"]}), target="TrentService.CreateGrant"))
for name, (status, body) in cases.items():
    print(json.dumps({"case": name, "status": status, "type": body.get("__type"), "message": body.get("message")}))
