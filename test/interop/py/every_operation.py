"""Call every operation of botocore's KMS model against a kmsvol endpoint.

Each request is generated from the model: its required members, filled with
values of the member's shape (an existing key's id for key ids). Prints one
JSON object: operation -> "ok" or the error code it answered, plus whether
that code is one the model lists for the operation.
"""
import datetime
import json
import sys

import boto3
import botocore.session
from botocore.exceptions import ClientError

endpoint, access_key, secret = sys.argv[1:4]
session = botocore.session.get_session()
model = session.get_service_model('kms')
client = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1',
                      aws_access_key_id=access_key, aws_secret_access_key=secret)
key_id = client.create_key(Description='every-operation')['KeyMetadata']['KeyId']


def value(name, shape, depth=0):
    t = shape.type_name
    if t == 'string':
        if shape.enum:
            return shape.enum[0]
        if name.endswith('KeyId') or name == 'KeyId':
            return key_id
        if name == 'AliasName':
            return 'alias/every-operation'
        if name.endswith('Principal'):
            return 'arn:aws:iam::000000000000:user/every-operation'
        n = max(shape.metadata.get('min', 1), 1)
        return ('x' * 64)[:max(n, 1)] if n <= 64 else 'x' * n
    if t == 'blob':
        return b'x'
    if t in ('integer', 'long'):
        return shape.metadata.get('min', 1)
    if t == 'boolean':
        return False
    if t == 'timestamp':
        return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    if t == 'list':
        return [value(name, shape.member, depth + 1)]
    if t == 'map':
        return {}
    if t == 'structure':
        return {m: value(m, s, depth + 1) for m, s in shape.members.items() if m in shape.required_members}
    raise ValueError(t)


out = {}
for op in model.operation_names:
    om = model.operation_model(op)
    params = value(op, om.input_shape) if om.input_shape else {}
    method = getattr(client, session.get_service_model('kms').operation_model(op).name and
                     ''.join('_' + c.lower() if c.isupper() else c for c in op).lstrip('_'))
    modeled = {e.name for e in om.error_shapes}
    try:
        method(**params)
        out[op] = {'result': 'ok'}
    except ClientError as e:
        code = e.response['Error']['Code']
        out[op] = {'result': code, 'modeled': code in modeled, 'message': e.response['Error'].get('Message', '')}
print(json.dumps(out, indent=1, sort_keys=True))
