"""Finding 3 of issue 24 through boto3 (Debian's): run by test/interop/ec2-input-text.test.ts.

argv[1] is the step: "bad-inputs" tries each bad CreateVolume and prints the
error codes; "describe" runs DescribeVolumes and prints every volume's zone
and tags. Output is one JSON document; a response boto3 cannot parse shows
up as {"unparsed": "<what boto3 said>"}.
"""
import json
import os
import sys

import boto3
import botocore.exceptions

ec2 = boto3.client("ec2", endpoint_url=os.environ["KMSVOL_ENDPOINT"])


def attempt(**kwargs):
    try:
        v = ec2.create_volume(Size=1, **kwargs)
        return {"created": v["VolumeId"]}
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
    except Exception as e:  # a response boto3 could not parse
        return {"unparsed": f"{type(e).__name__}: {e}"}


if sys.argv[1] == "bad-inputs":
    tags = lambda value: [{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": value}]}]
    print(json.dumps({
        "zone-control": attempt(AvailabilityZone="us-east-1a\x01"),
        "zone-unknown": attempt(AvailabilityZone="us-east-1q"),
        "tag-control": attempt(AvailabilityZone="us-east-1a", TagSpecifications=tags("v\x01")),
        "good": attempt(AvailabilityZone="us-east-1b", TagSpecifications=tags("fine")),
    }))
elif sys.argv[1] == "describe":
    try:
        vols = ec2.describe_volumes()["Volumes"]
        print(json.dumps({"volumes": [{"id": v["VolumeId"], "zone": v["AvailabilityZone"], "tags": v.get("Tags", [])} for v in vols]}))
    except Exception as e:
        print(json.dumps({"unparsed": f"{type(e).__name__}: {e}"}))
