// Drives a phonestatus server with @alicloud/pop-core (RPC signature V1).
// Input (argv[2]): JSON {endpoint, accessKeyId, accessKeySecret, calls: [{action, params, method}]}.
// Output (stdout): JSON array, one {ok, body} or {ok: false, code, data} per call.
'use strict';

const RPCClient = require('@alicloud/pop-core');

async function main() {
  const input = JSON.parse(process.argv[2]);
  const client = new RPCClient({
    accessKeyId: input.accessKeyId,
    accessKeySecret: input.accessKeySecret,
    endpoint: input.endpoint,
    apiVersion: '2020-02-17',
  });
  const results = [];
  for (const call of input.calls) {
    try {
      // pop-core's default timeout is 3 s, too short for a cold server on a loaded test machine.
      const options = { method: call.method, timeout: 30000 };
      const body = await client.request(call.action, call.params, options);
      results.push({ ok: true, body });
    } catch (err) {
      results.push({ ok: false, code: err.code, data: err.data, message: String(err.message) });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
