"""EC2 conformance through boto3 (botocore's EC2 model is the oracle):
types, pagination over more than one page with botocore's paginator, filters,
tags, DryRun both ways, documented errors, and each waiter."""
import datetime
import json
import os
import subprocess

import boto3
import pytest
from botocore.exceptions import ClientError

FAST = {"Delay": 1, "MaxAttempts": 60}
ZONE = os.environ["AWS_DEFAULT_REGION"] + "a"


def code(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def new_volume(ec2, cleanup, **kw):
    v = ec2.create_volume(Size=kw.pop("Size", 1), AvailabilityZone=ZONE, **kw)
    cleanup["volumes"].append(v["VolumeId"])
    ec2.get_waiter("volume_available").wait(VolumeIds=[v["VolumeId"]], WaiterConfig=FAST)
    return v


def test_types_and_the_volume_waiters(ec2, kms, cleanup):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    # 3,500 IOPS needs 7 GiB: gp3 allows at most 500 IOPS per GiB.
    v = new_volume(ec2, cleanup, Size=7, Encrypted=True, KmsKeyId=key, VolumeType="gp3", Iops=3500)
    assert v["State"] == "creating" and isinstance(v["CreateTime"], datetime.datetime)
    assert (v["Size"], v["Encrypted"], v["Iops"], v["Throughput"], v["MultiAttachEnabled"]) == (7, True, 3500, 125, False)
    d = ec2.describe_volumes(VolumeIds=[v["VolumeId"]])["Volumes"][0]
    assert d["State"] == "available" and d["Attachments"] == []
    me = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    a = ec2.attach_volume(VolumeId=v["VolumeId"], InstanceId=me["InstanceId"], Device="/dev/sdg")
    assert isinstance(a["AttachTime"], datetime.datetime) and a["DeleteOnTermination"] is False
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[v["VolumeId"]], WaiterConfig=FAST)
    ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
    ec2.get_waiter("volume_available").wait(VolumeIds=[v["VolumeId"]], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=v["VolumeId"])
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[v["VolumeId"]], WaiterConfig=FAST)
    cleanup["volumes"].remove(v["VolumeId"])


def test_pagination_with_the_paginator_and_filters(ec2, cleanup):
    ids = [new_volume(ec2, cleanup, TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "suite", "Value": "boto3-pages"}]}])["VolumeId"] for _ in range(7)]
    flt = [{"Name": "tag:suite", "Values": ["boto3-*"]}]
    pages = list(ec2.get_paginator("describe_volumes").paginate(Filters=flt, PaginationConfig={"PageSize": 5}))
    assert [len(p["Volumes"]) for p in pages] == [5, 2]
    assert sorted(v["VolumeId"] for p in pages for v in p["Volumes"]) == sorted(ids)
    assert "NextToken" in pages[0] and "NextToken" not in pages[1]
    assert [v["VolumeId"] for v in ec2.describe_volumes(Filters=flt + [{"Name": "volume-id", "Values": [ids[3]]}])["Volumes"]] == [ids[3]]
    assert code(ec2.describe_volumes, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])[0] == "InvalidParameterValue"


def test_tags(ec2, cleanup):
    vid = new_volume(ec2, cleanup)["VolumeId"]
    ec2.create_tags(Resources=[vid], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]
    assert got == [{"Key": "a", "ResourceId": vid, "ResourceType": "volume", "Value": "1"}, {"Key": "b", "ResourceId": vid, "ResourceType": "volume", "Value": "2"}]
    ec2.delete_tags(Resources=[vid], Tags=[{"Key": "a"}])
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Tags"] == [{"Key": "b", "Value": "2"}]


def test_dry_run_both_ways(ec2, kms, cleanup):
    tester = "arn:aws:iam::000000000000:user/tester"
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": tester}, "Action": "kms:*", "Resource": "*"}]}))
    assert code(ec2.create_volume, Size=1, AvailabilityZone=ZONE, Encrypted=True, KmsKeyId=key, DryRun=True) == ("DryRunOperation", 412)
    out = subprocess.run([os.environ["KMSVOL_BIN"], "iam", "create-access-key", "--user-name", "mallory"], check=True, capture_output=True, text=True).stdout
    k = json.loads(out)["AccessKey"]
    other = boto3.client("ec2", endpoint_url=os.environ["KMSVOL_ENDPOINT"], aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
    assert code(other.create_volume, Size=1, AvailabilityZone=ZONE, Encrypted=True, KmsKeyId=key, DryRun=True) == ("UnauthorizedOperation", 403)
    assert ec2.describe_volumes(Filters=[{"Name": "kms-key-id", "Values": ["*" + key]}])["Volumes"] == []


def test_documented_errors(ec2, cleanup):
    assert code(ec2.describe_volumes, VolumeIds=["vol-0123456789abcdef0"]) == ("InvalidVolume.NotFound", 400)
    assert code(ec2.delete_volume, VolumeId="vol-nothex")[0] == "InvalidVolumeID.Malformed"
    assert code(ec2.delete_snapshot, SnapshotId="snap-0123456789abcdef0")[0] == "InvalidSnapshot.NotFound"
    assert code(ec2.create_volume, Size=20000, AvailabilityZone=ZONE)[0] == "InvalidParameterValue"
    assert code(ec2.create_volume, Size=1, AvailabilityZone=ZONE, VolumeType="io1")[0] == "MissingParameter"
    assert code(ec2.create_volume, Size=1, AvailabilityZone=ZONE, VolumeType="gp2", Iops=3000)[0] == "InvalidParameterCombination"
    assert code(ec2.modify_ebs_default_kms_key_id, KmsKeyId="alias/missing")[0] == "InvalidKMSKey.NotFound"
    vid = new_volume(ec2, cleanup)["VolumeId"]
    assert code(ec2.detach_volume, VolumeId=vid)[0] == "IncorrectState"
    assert code(ec2.attach_volume, VolumeId=vid, InstanceId="i-0123456789abcdef0", Device="/dev/sdf")[0] == "InvalidInstanceID.NotFound"
    assert code(ec2.modify_volume, VolumeId=vid, Size=1)[0] == "InvalidParameterValue"
    assert ec2.describe_volume_attribute(VolumeId=vid, Attribute="productCodes")["ProductCodes"] == []


def test_snapshot_waiter_and_copy(ec2, kms, cleanup):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    vid = new_volume(ec2, cleanup, Encrypted=True, KmsKeyId=key)["VolumeId"]
    s = ec2.create_snapshot(VolumeId=vid, Description="conformance")
    cleanup["snapshots"].append(s["SnapshotId"])
    assert (s["State"], s["Progress"], s["Description"]) == ("pending", "", "conformance")
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[s["SnapshotId"]], WaiterConfig=FAST)
    c = ec2.copy_snapshot(SourceSnapshotId=s["SnapshotId"], SourceRegion=os.environ["AWS_DEFAULT_REGION"])
    cleanup["snapshots"].append(c["SnapshotId"])
    assert set(c) == {"SnapshotId", "ResponseMetadata"}
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[c["SnapshotId"]], WaiterConfig=FAST)
    got = ec2.describe_snapshots(OwnerIds=["self"], SnapshotIds=[s["SnapshotId"], c["SnapshotId"]])["Snapshots"]
    assert {x["State"] for x in got} == {"completed"} and {x["Progress"] for x in got} == {"100%"}
