"""boto3 (Debian's python3-boto3) against `kmsvol serve`, with only endpoint_url set.

Run by test/interop/real-clients.test.ts with KMSVOL_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, BOB_ACCESS_KEY_ID, BOB_SECRET_ACCESS_KEY and
KMSVOL_ACCOUNT in the environment.
"""
import base64
import json
import os

import boto3
import pytest
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KMSVOL_ENDPOINT"]
ACCOUNT = os.environ["KMSVOL_ACCOUNT"]


def kms(region="us-east-1", **creds):
    return boto3.client("kms", endpoint_url=ENDPOINT, region_name=region, **creds)


def bob():
    return kms(aws_access_key_id=os.environ["BOB_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["BOB_SECRET_ACCESS_KEY"])


def code(excinfo):
    err = excinfo.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] in (400, 412), err
    return err["Error"]["Code"]


def test_every_operation_with_aws_field_names():
    c = kms()
    md = c.create_key(Description="boto3", Tags=[{"TagKey": "t", "TagValue": "v"}])["KeyMetadata"]
    key = md["KeyId"]
    assert md["Arn"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}"
    assert md["KeyState"] == "Enabled" and md["CreationDate"].year >= 2024
    assert c.describe_key(KeyId=md["Arn"])["KeyMetadata"]["KeyId"] == key
    assert key in [k["KeyId"] for k in c.list_keys()["Keys"]]
    c.update_key_description(KeyId=key, Description="d2")
    c.tag_resource(KeyId=key, Tags=[{"TagKey": "u", "TagValue": "w"}])
    c.untag_resource(KeyId=key, TagKeys=["t"])
    assert c.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "u", "TagValue": "w"}]
    enc = c.encrypt(KeyId=key, Plaintext=b"hello", EncryptionContext={"a": "b"})
    assert enc["KeyId"] == md["Arn"] and enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = c.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert dec["Plaintext"] == b"hello" and dec["KeyId"] == md["Arn"]
    key2 = c.create_key()["KeyMetadata"]["KeyId"]
    re = c.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext={"a": "b"}, DestinationKeyId=key2)
    assert re["SourceKeyId"] == md["Arn"] and re["KeyId"].endswith(key2)
    assert len(c.generate_data_key(KeyId=key, NumberOfBytes=64)["Plaintext"]) == 64
    assert "Plaintext" not in c.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256")
    assert len(c.generate_random(NumberOfBytes=32)["Plaintext"]) == 32
    c.disable_key(KeyId=key2)
    c.enable_key(KeyId=key2)
    s = c.schedule_key_deletion(KeyId=key2, PendingWindowInDays=7)
    assert s["KeyState"] == "PendingDeletion" and s["DeletionDate"].year >= 2024
    c.cancel_key_deletion(KeyId=key2)
    c.enable_key(KeyId=key2)
    c.enable_key_rotation(KeyId=key)
    assert c.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    c.disable_key_rotation(KeyId=key)
    c.create_alias(AliasName="alias/boto", TargetKeyId=key)
    c.update_alias(AliasName="alias/boto", TargetKeyId=key2)
    alias = [a for a in c.list_aliases()["Aliases"] if a["AliasName"] == "alias/boto"][0]
    assert alias["TargetKeyId"] == key2 and alias["AliasArn"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/boto"
    c.delete_alias(AliasName="alias/boto")
    assert c.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
    policy = json.loads(c.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    c.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    g = c.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:user/bob", Operations=["Decrypt"], RetiringPrincipal=f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert [x["GrantId"] for x in c.list_grants(KeyId=key)["Grants"]] == [g["GrantId"]]
    assert g["GrantId"] in [x["GrantId"] for x in c.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{ACCOUNT}:user/alice")["Grants"]]
    c.retire_grant(GrantToken=g["GrantToken"])
    g2 = c.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:user/bob", Operations=["Encrypt"])
    c.revoke_grant(KeyId=key, GrantId=g2["GrantId"])
    assert c.list_grants(KeyId=key)["Grants"] == []
    mrk = c.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    rep = c.replicate_key(KeyId=mrk, ReplicaRegion="eu-west-1")["ReplicaKeyMetadata"]
    assert rep["Arn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{mrk}"
    c.update_primary_region(KeyId=mrk, PrimaryRegion="eu-west-1")
    ext = c.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert ext["KeyState"] == "PendingImport"
    params = c.get_parameters_for_import(KeyId=ext["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    assert params["ImportToken"] and params["PublicKey"]
    c.delete_imported_key_material(KeyId=ext["KeyId"])


def test_documented_errors():
    c = kms()
    key = c.create_key()["KeyMetadata"]["KeyId"]
    other = c.create_key()["KeyMetadata"]["KeyId"]
    blob = c.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        c.describe_key(KeyId="alias/none")
    assert code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        c.decrypt(CiphertextBlob=blob, KeyId=other)
    assert code(e) == "IncorrectKeyException"
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(ClientError) as e:
        c.decrypt(CiphertextBlob=bytes(bad))
    assert code(e) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        c.generate_data_key(KeyId=key)
    assert code(e) == "ValidationException"
    c.create_alias(AliasName="alias/dup", TargetKeyId=key)
    with pytest.raises(ClientError) as e:
        c.create_alias(AliasName="alias/dup", TargetKeyId=key)
    assert code(e) == "AlreadyExistsException"
    alice_only = c.create_key(Policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        bob().encrypt(KeyId=alice_only, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        c.create_key(CustomKeyStoreId="cks-1234567890abcdef0")
    assert code(e) == "CustomKeyStoreNotFoundException"
    c.disable_key(KeyId=key)
    with pytest.raises(ClientError) as e:
        c.decrypt(CiphertextBlob=blob)
    assert code(e) == "DisabledException"
    assert e.value.response["Error"]["Message"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key} is disabled."
    c.schedule_key_deletion(KeyId=other, PendingWindowInDays=7)
    with pytest.raises(ClientError) as e:
        c.encrypt(KeyId=other, Plaintext=b"x")
    assert code(e) == "KMSInvalidStateException"


def test_each_region_is_its_own_namespace():
    east, west = kms("us-east-1"), kms("eu-west-1")
    key = east.create_key()["KeyMetadata"]
    assert key["Arn"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")
    with pytest.raises(ClientError) as e:
        west.describe_key(KeyId=key["KeyId"])
    assert code(e) == "NotFoundException"
    assert west.create_key()["KeyMetadata"]["Arn"].startswith(f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/")


def test_sts_sessions_are_the_role_and_only_the_role():
    sts = boto3.client("sts", endpoint_url=ENDPOINT, region_name="us-east-1")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/auditor"
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)
    cr = out["Credentials"]
    assert cr["AccessKeyId"].startswith("ASIA") and out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/auditor/s1"
    session = dict(aws_access_key_id=cr["AccessKeyId"], aws_secret_access_key=cr["SecretAccessKey"], aws_session_token=cr["SessionToken"])
    assert boto3.client("sts", endpoint_url=ENDPOINT, region_name="us-east-1", **session).get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"]
    c = kms()
    key = c.create_key(Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": "kms:DescribeKey", "Resource": "*"},
    ]}))["KeyMetadata"]["KeyId"]
    as_role = kms(**session)
    assert as_role.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    with pytest.raises(ClientError) as e:
        as_role.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    # bob is not trusted by the role
    bsts = boto3.client("sts", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=os.environ["BOB_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["BOB_SECRET_ACCESS_KEY"])
    with pytest.raises(ClientError) as e:
        bsts.assume_role(RoleArn=role_arn, RoleSessionName="s2")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
