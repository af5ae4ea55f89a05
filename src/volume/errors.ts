import { ServiceError } from '../errors.js';

/** EC2's error codes for the volume side, worded as EC2 words them. */
const err = (name: string) => (message: string) => new ServiceError(name, message);

export const Ec2Errors = {
  volumeNotFound: (id: string) => new ServiceError('InvalidVolume.NotFound', `The volume '${id}' does not exist.`),
  volumeInUse: (id: string, detail = '') => new ServiceError('VolumeInUse', `Volume ${id} is currently attached${detail}.`),
  incorrectState: err('IncorrectState'),
  invalidParameter: err('InvalidParameterValue'),
  insufficientCapacity: err('InsufficientVolumeCapacity'),
  missingParameter: err('MissingParameter'),
  invalidId: (kind: string, id: string) => new ServiceError(`Invalid${kind}ID.Malformed`, `Invalid id: "${id}"`),
  notAttached: (id: string) => new ServiceError('IncorrectState', `Volume '${id}' is in the 'available' state; it is not attached.`),
};
