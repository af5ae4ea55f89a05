"""Fixtures for the boto3 tests against a kmsvol endpoint.

The endpoint, its home and its credentials come from the environment that
test/interop/ec2-clients.test.ts sets (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, KMSVOL_ENDPOINT); boto3 is given only endpoint_url.
"""
import os
import subprocess
import tempfile

import boto3
import pytest

ENDPOINT = os.environ["KMSVOL_ENDPOINT"]


@pytest.fixture
def ec2():
    return boto3.client("ec2", endpoint_url=ENDPOINT)


@pytest.fixture
def ebs():
    return boto3.client("ebs", endpoint_url=ENDPOINT)


@pytest.fixture
def kms():
    return boto3.client("kms", endpoint_url=ENDPOINT)


@pytest.fixture
def cleanup(ec2):
    """Unmounts, detaches (force) and deletes what a test made, even when it fails."""
    made = {"mounts": [], "volumes": [], "snapshots": []}
    yield made
    for m in reversed(made["mounts"]):
        subprocess.run(["umount", "-l", m], check=False)
    for v in made["volumes"]:
        try:
            vol = ec2.describe_volumes(VolumeIds=[v])["Volumes"][0]
        except Exception:
            continue
        if vol["Attachments"]:
            try:
                ec2.detach_volume(VolumeId=v, Force=True)
                ec2.get_waiter("volume_available").wait(VolumeIds=[v], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            except Exception:
                pass
        try:
            ec2.delete_volume(VolumeId=v)
        except Exception:
            pass
    for s in made["snapshots"]:
        try:
            ec2.delete_snapshot(SnapshotId=s)
        except Exception:
            pass


def mount(made, dev):
    d = tempfile.mkdtemp(prefix="kmsvol-mnt-")
    subprocess.run(["mount", dev, d], check=True)
    made["mounts"].append(d)
    return d


def unmount(made, d):
    subprocess.run(["umount", d], check=True)
    made["mounts"].remove(d)
    os.rmdir(d)
