"""boto3 (Debian's python3-boto3) with asymmetric and HMAC keys against `kmsvol serve`.

openssl is the oracle for what boto3 gets back. Run by
test/interop/kms-asymmetric-clients.test.ts with KMSVOL_ENDPOINT,
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment.
(Debian's botocore predates DeriveSharedSecret and GetKeyLastUsage; the
SDK part of that test covers them.)
"""
import hashlib
import os
import subprocess

import boto3
import pytest

ENDPOINT = os.environ["KMSVOL_ENDPOINT"]


def kms():
    return boto3.client("kms", endpoint_url=ENDPOINT, region_name="us-east-1")


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


@pytest.mark.parametrize("spec,alg,hashname", [
    ("RSA_2048", "RSASSA_PSS_SHA_384", "sha384"),
    ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256", "sha256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384", "sha384"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256"),
])
def test_sign_verifies_with_openssl_and_tampering_raises_the_modeled_exception(tmp_path, spec, alg, hashname):
    c = kms()
    md = c.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert md["KeySpec"] == spec and alg in md["SigningAlgorithms"]
    pub = c.get_public_key(KeyId=md["KeyId"])
    assert pub["KeyUsage"] == "SIGN_VERIFY" and pub["SigningAlgorithms"] == md["SigningAlgorithms"]
    (tmp_path / "pub.der").write_bytes(pub["PublicKey"])
    message = os.urandom(2048)
    (tmp_path / "msg").write_bytes(message)
    digest = hashlib.new(hashname, message).digest()
    for kind, m in (("RAW", message), ("DIGEST", digest)):
        sig = c.sign(KeyId=md["Arn"], Message=m, MessageType=kind, SigningAlgorithm=alg)["Signature"]
        (tmp_path / "sig").write_bytes(sig)
        pss = ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:-1"] if "PSS" in alg else []
        (tmp_path / "dgst").write_bytes(digest)
        out = openssl("pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der"),
                      "-pkeyopt", f"digest:{hashname}", *pss, "-in", str(tmp_path / "dgst"), "-sigfile", str(tmp_path / "sig"))
        assert b"Signature Verified Successfully" in out
        assert c.verify(KeyId=md["KeyId"], Message=message, Signature=sig, SigningAlgorithm=alg)["SignatureValid"] is True
        bad = bytes([sig[0] ^ 1]) + sig[1:]
        with pytest.raises(c.exceptions.KMSInvalidSignatureException):
            c.verify(KeyId=md["KeyId"], Message=message, Signature=bad, SigningAlgorithm=alg)
    with pytest.raises(c.exceptions.InvalidKeyUsageException):
        c.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_512")


def test_hmac_matches_openssl_mac():
    c = kms()
    key = c.create_key(KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = c.generate_mac(KeyId=key, Message=b"token", MacAlgorithm="HMAC_SHA_384")
    assert mac["MacAlgorithm"] == "HMAC_SHA_384" and len(mac["Mac"]) == 48
    assert c.verify_mac(KeyId=key, Message=b"token", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_384")["MacValid"] is True
    with pytest.raises(c.exceptions.KMSInvalidMacException):
        c.verify_mac(KeyId=key, Message=b"tokem", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_384")
    with pytest.raises(c.exceptions.InvalidKeyUsageException):
        c.generate_mac(KeyId=key, Message=b"token", MacAlgorithm="HMAC_SHA_256")


def test_openssl_rsa_oaep_ciphertext_decrypts(tmp_path):
    c = kms()
    key = c.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    (tmp_path / "pub.der").write_bytes(c.get_public_key(KeyId=key)["PublicKey"])
    secret = os.urandom(190)
    ct = openssl("pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der"),
                 "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", data=secret)
    dec = c.decrypt(KeyId=key, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert dec["Plaintext"] == secret and dec["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    with pytest.raises(c.exceptions.InvalidCiphertextException):
        c.decrypt(KeyId=key, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_1")


def test_data_key_pair_private_key_is_pkcs8_der_for_openssl(tmp_path):
    c = kms()
    key = c.create_key()["KeyMetadata"]["KeyId"]
    pair = c.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P521", EncryptionContext={"app": "x"})
    assert pair["KeyPairSpec"] == "ECC_NIST_P521"
    opened = c.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext={"app": "x"})["Plaintext"]
    assert opened == pair["PrivateKeyPlaintext"]
    (tmp_path / "priv.der").write_bytes(opened)
    assert openssl("pkey", "-inform", "DER", "-in", str(tmp_path / "priv.der"), "-pubout", "-outform", "DER") == pair["PublicKey"]
    nopt = c.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in nopt and len(nopt["PublicKey"]) > 256


def test_custom_key_stores_answer_as_a_region_without_any():
    c = kms()
    assert c.describe_custom_key_stores()["CustomKeyStores"] == []
    with pytest.raises(c.exceptions.CustomKeyStoreNotFoundException):
        c.connect_custom_key_store(CustomKeyStoreId="cks-1234567890abcdef0")
    with pytest.raises(c.exceptions.CloudHsmClusterNotFoundException):
        c.create_custom_key_store(CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-1a23b4cdefg", TrustAnchorCertificate="x", KeyStorePassword="password")
