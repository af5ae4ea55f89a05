/**
 * kmsvol's programmatic API, for users' own integration tests and tools.
 * Errors are typed: every one carries AWS's exception name as `name`.
 */

export type { KmsvolOptions } from './api.js';
export { Kmsvol } from './api.js';
export type { Clock } from './clock.js';
export { ManualClock, systemClock } from './clock.js';
export { isServiceError, ServiceError, UsageError } from './errors.js';
export type { Home } from './home.js';
export { openHome, resolveHomeDir } from './home.js';
export type { KmsClient } from './kms/client/index.js';
export { InProcessKmsClient } from './kms/client/index.js';
export { KmsError } from './kms/errors.js';
export type { KmsOperation, KmsOptions, KmsRequest, KmsResponse } from './kms/kms.js';
// The handler table keeps its public name (KMS_OPERATIONS) for the library's users.
export { KMS_HANDLERS as KMS_OPERATIONS, Kms } from './kms/kms.js';
