// Loaded by path by the Temporal SDK (client, worker and workflow bundle): failure messages and
// stack traces are moved into an encoded attributes payload, so the payload codec encrypts them.
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
