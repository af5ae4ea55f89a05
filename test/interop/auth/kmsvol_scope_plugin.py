"""An AWS CLI plugin (and boto3 event handler) for the auth conformance sweep.

With KMSVOL_SIGNING_NAME set, requests are signed for that service instead of
their own, as a client configured for the wrong service would sign them: the
signing name is set in the request's signing context, which botocore's
RequestSigner reads after the before-sign event. Without it, nothing changes.
"""
import os


def scope_to(request, **kwargs):
    name = os.environ.get("KMSVOL_SIGNING_NAME")
    if name:
        request.context.setdefault("signing", {})["signing_name"] = name


def awscli_initialize(cli):
    cli.register("before-sign", scope_to)
