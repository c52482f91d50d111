// Preloaded into a peer's Node process (node --require ./loopback-dns.cjs ...) to keep it
// hermetic: the benchmark host names (www.news0.example ...) resolve to 127.0.0.1, where
// the fault-injection web listens, and every other name fails as "not found" WITHOUT a
// query leaving the machine. A connection to a non-loopback address is refused too.
//
// BENCH_LOOPBACK_HOSTS: comma-separated names or "*.suffix" patterns (default "*.example").
'use strict';
const dns = require('node:dns');
const net = require('node:net');

const patterns = (process.env.BENCH_LOOPBACK_HOSTS || '*.example')
  .split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

function isBenchHost(name) {
  const host = String(name).toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return patterns.some((p) => (p.startsWith('*.') ? host.endsWith(p.slice(1)) : host === p));
}

function isLoopbackAddress(address) {
  return address === '::1' || /^127\./.test(address) || address === '::ffff:127.0.0.1';
}

function notFound(hostname) {
  const err = new Error(`getaddrinfo ENOTFOUND ${hostname} (blocked: benchmarks stay on loopback)`);
  err.code = 'ENOTFOUND';
  err.errno = -3008;
  err.syscall = 'getaddrinfo';
  err.hostname = hostname;
  return err;
}

function answer(hostname, options) {
  const opts = typeof options === 'number' ? { family: options } : options || {};
  if (net.isIP(hostname)) {
    return isLoopbackAddress(hostname) ? { address: hostname, family: net.isIP(hostname) } : null;
  }
  if (!isBenchHost(hostname)) return null;
  return opts.family === 6 ? { address: '::1', family: 6 } : { address: '127.0.0.1', family: 4 };
}

function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  const opts = typeof options === 'number' ? { family: options } : options || {};
  const found = answer(hostname, opts);
  process.nextTick(() => {
    if (!found) return callback(notFound(hostname));
    if (opts.all) return callback(null, [found]);
    return callback(null, found.address, found.family);
  });
}

dns.lookup = lookup;
dns.promises.lookup = (hostname, options) =>
  new Promise((resolve, reject) => {
    lookup(hostname, options || {}, (err, address, family) => {
      if (err) return reject(err);
      if (Array.isArray(address)) return resolve(address);
      return resolve({ address, family });
    });
  });
// Resolver queries (dns.resolve*) would go to the network: refuse them outright.
for (const name of Object.keys(dns)) {
  if (/^resolve/.test(name) && typeof dns[name] === 'function') {
    dns[name] = (host, ...rest) => {
      const cb = rest.pop();
      process.nextTick(() => cb(notFound(host)));
    };
  }
}

// Last line of defence: whatever the lookup, only loopback peers may be dialled.
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  // net.connect() passes its normalized arguments as one array: [options, callback].
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  const host = options.host;
  if (!options.path && host && net.isIP(host) && !isLoopbackAddress(host)) {
    throw new Error(`refusing to connect to ${host}: benchmarks stay on loopback`);
  }
  return originalConnect.apply(this, args);
};
