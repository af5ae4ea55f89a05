"""One cell of the auth conformance sweep with boto3: call the service once
(EC2 DescribeVolumes, STS GetCallerIdentity) and print, as JSON, the error
code, HTTP status and message boto3 surfaces ("ok" when the call succeeds).
The failure is made by the environment (credentials, region, the process's
clock under libfaketime) or, for "missing", by boto3's UNSIGNED config, and
for "wrong-service" by the plugin's before-sign handler."""
import json
import os
import sys

import boto3
import botocore
from botocore.config import Config

sys.path.insert(0, os.path.dirname(__file__))
from kmsvol_scope_plugin import scope_to  # noqa: E402

service, failure = sys.argv[1], sys.argv[2]
options = {"retries": {"max_attempts": 1, "mode": "standard"}}
if failure == "missing":
    options["signature_version"] = botocore.UNSIGNED
client = boto3.client(service, endpoint_url=os.environ["KMSVOL_ENDPOINT"], config=Config(**options))
client.meta.events.register("before-sign", scope_to)
try:
    if service == "ec2":
        client.describe_volumes()
    else:
        client.get_caller_identity()
    print(json.dumps({"code": "ok"}))
except botocore.exceptions.ClientError as e:
    err = e.response.get("Error", {})
    print(json.dumps({"code": err.get("Code"), "status": e.response["ResponseMetadata"].get("HTTPStatusCode"), "message": err.get("Message")}))
