// Prints the counters of one chain as the dashboard pushes them: CountersChanged on /hubs/lab, signed in with an API
// token (sent as ?access_token= on the WebSocket, as browsers must).
//
// Usage: NETLAB_URL=http://127.0.0.1:5000 NETLAB_TOKEN=nlt_... node counters.mjs CHAIN [--count N] [--timeout SECONDS] [--host NAME]
// Prints "connected to HOST", then one line per rule of CHAIN whose packets moved:
//   2026-12-06T12:00:01.250Z host filter DOCKER-ISOLATION-STAGE-2 #1 +3 packets (total 3) -o br-... -j DROP
// and exits 0 after N such lines (default: runs until stopped), 1 when the timeout passes first.
import * as signalR from '@microsoft/signalr';

const args = process.argv.slice(2);
const chain = args.find(a => !a.startsWith('--'));
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const url = process.env.NETLAB_URL;
const token = process.env.NETLAB_TOKEN;
if (!chain || !url || !token) {
  console.error('usage: NETLAB_URL=... NETLAB_TOKEN=nlt_... node counters.mjs CHAIN [--count N] [--timeout SECONDS] [--host NAME]');
  process.exit(2);
}
const count = Number(option('--count', '0'));
const timeout = Number(option('--timeout', '0'));
const host = option('--host', '');

const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${url.replace(/\/$/, '')}/hubs/lab`, { accessTokenFactory: () => token })
  .configureLogging(signalR.LogLevel.Warning)
  .build();

let printed = 0;
connection.on('CountersChanged', message => {
  for (const rule of message.rules) {
    if (rule.chain !== chain || rule.deltaPackets <= 0) continue;
    console.log(`${message.readAt} ${message.host} ${rule.table} ${rule.chain} #${rule.position} +${rule.deltaPackets} packets (total ${rule.packets}) ${rule.key}`);
    if (count > 0 && ++printed >= count) {
      connection.stop().then(() => process.exit(0));
    }
  }
});

if (timeout > 0) {
  setTimeout(() => {
    console.error(`no ${count} counter change(s) of ${chain} within ${timeout} s`);
    process.exit(1);
  }, timeout * 1000).unref();
}

await connection.start();
if (host) await connection.invoke('JoinHost', host);
console.log(`connected to ${host || 'the dashboard\'s own host'}`);
