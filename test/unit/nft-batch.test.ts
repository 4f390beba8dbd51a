/**
 * The JSON batches the nft adapter sends, with nft replaced by a recorder:
 * no root, no nft binary needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandRunner, Nft, type NftRunResult } from '../../src/adapters/nft.js';
import { SentryError } from '../../src/errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed nft JSON, whose shape the assertions check
type J = any;

interface Call {
  args: string[];
  input: string;
}

const META = { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } };
const ok = (stdout = ''): NftRunResult => ({ stdout, stderr: '', exitCode: 0 });
const fail = (stderr: string): NftRunResult => ({ stdout: '', stderr, exitCode: 1 });
const out = (...objects: J[]): string => JSON.stringify({ nftables: [META, ...objects] });
const tables = (...names: string[]) => out(...names.map((name, handle) => ({ table: { family: 'inet', name, handle } })));

/** An nft stand-in: records every call and answers with `answer`. */
function recorder(answer: (c: Call) => NftRunResult) {
  const calls: Call[] = [];
  const run = async (args: string[], input: string): Promise<NftRunResult> => {
    const c = { args, input };
    calls.push(c);
    return answer(c);
  };
  const batches = () => calls.filter((c) => c.args.join(' ') === '-j -f -').map((c) => JSON.parse(c.input).nftables as J[]);
  return { calls, run, batches };
}

const isBatch = (c: Call) => c.args.join(' ') === '-j -f -';
const is = (c: Call, args: string) => c.args.join(' ') === args;

/** The elements of every `verb element` command of a batch, by set name. */
function elements(batch: J[], verb: string): Map<string, J[]> {
  const m = new Map<string, J[]>();
  for (const cmd of batch) {
    const el = cmd[verb]?.element;
    if (el) m.set(el.name, [...(m.get(el.name) ?? []), ...el.elem]);
  }
  return m;
}

/** The objects `nft -j -t list table` would print for what an ensure() batch created. */
function listed(batch: J[]): J[] {
  return batch
    .filter((c) => c.add && !c.add.table)
    .map((c) => {
      const [kind, obj] = Object.entries(c.add)[0] as [string, J];
      return { [kind]: { ...obj, handle: 1 } };
    });
}

test('ensure() on a machine without the table sends one atomic batch with table, four sets, chain, four drop rules and the conntrack rule', async () => {
  const nft = recorder((c) => (is(c, '-j list tables') ? ok(tables('filter')) : ok()));
  assert.equal(await new Nft({ table: 'sx_test', run: nft.run }).ensure(), true);
  const batches = nft.batches();
  assert.equal(batches.length, 1, 'exactly one nft -j -f - call');
  const b = batches[0]!;
  assert.deepEqual(b[0], { add: { table: { family: 'inet', name: 'sx_test' } } });
  const sets = b.filter((c) => c.add?.set).map((c) => c.add.set);
  assert.deepEqual(
    sets.map((s) => [s.family, s.table, s.name, s.type, [...s.flags].sort().join(',')]),
    [
      ['inet', 'sx_test', 'bans_v4', 'ipv4_addr', 'timeout'],
      ['inet', 'sx_test', 'nets_v4', 'ipv4_addr', 'interval,timeout'],
      ['inet', 'sx_test', 'bans_v6', 'ipv6_addr', 'timeout'],
      ['inet', 'sx_test', 'nets_v6', 'ipv6_addr', 'interval,timeout'],
    ],
  );
  const chains = b.filter((c) => c.add?.chain).map((c) => c.add.chain);
  assert.deepEqual(chains, [{ family: 'inet', table: 'sx_test', name: 'prerouting', type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' }]);
  const rules = b.filter((c) => c.add?.rule).map((c) => c.add.rule);
  const ct = rules.pop()!;
  assert.deepEqual(ct.expr, [{ match: { op: '==', left: { ct: { key: 'state' } }, right: 'untracked' } }], 'a verdict-less rule that keeps conntrack on');
  assert.deepEqual(
    rules.map((r) => [
      r.table,
      r.chain,
      r.expr[0].match.left.payload.protocol,
      r.expr[0].match.left.payload.field,
      r.expr[0].match.right,
      Object.keys(r.expr[1])[0],
    ]),
    [
      ['sx_test', 'prerouting', 'ip', 'saddr', '@bans_v4', 'drop'],
      ['sx_test', 'prerouting', 'ip', 'saddr', '@nets_v4', 'drop'],
      ['sx_test', 'prerouting', 'ip6', 'saddr', '@bans_v6', 'drop'],
      ['sx_test', 'prerouting', 'ip6', 'saddr', '@nets_v6', 'drop'],
    ],
  );
  assert.equal(b.length, 1 + 4 + 1 + 5, `nothing else in the batch: ${JSON.stringify(b)}`);
  assert.ok(!b.some((c) => c.flush || c.delete), 'nothing is flushed or deleted on a fresh machine');
});

test('ensure() leaves a complete table alone and repairs a damaged one in one batch', async () => {
  const first = recorder((c) => (is(c, '-j list tables') ? ok(tables()) : ok()));
  await new Nft({ run: first.run }).ensure();
  const state = listed(first.batches()[0]!);

  const again = recorder((c) => {
    if (is(c, '-j list tables')) return ok(tables('sentry_xdp'));
    if (is(c, '-j -t list table inet sentry_xdp')) return ok(out({ table: { family: 'inet', name: 'sentry_xdp', handle: 1 } }, ...state));
    return ok();
  });
  assert.equal(await new Nft({ run: again.run }).ensure(), false, 'a complete table needs nothing');
  assert.equal(again.batches().length, 0);

  const damaged = state.filter((o) => !(o.rule && o.rule.expr[0].match.right === '@nets_v6') && o.set?.name !== 'bans_v6');
  const repair = recorder((c) => {
    if (is(c, '-j list tables')) return ok(tables('sentry_xdp'));
    if (is(c, '-j -t list table inet sentry_xdp')) return ok(out(...damaged));
    return ok();
  });
  assert.equal(await new Nft({ run: repair.run }).ensure(), true);
  const [b, ...rest] = repair.batches();
  assert.equal(rest.length, 0, 'one batch');
  assert.ok(
    b!.some((c) => c.flush?.chain?.name === 'prerouting'),
    'the chain is flushed before its rules are added again',
  );
  assert.equal(b!.filter((c) => c.add?.rule).length, 5);
  assert.ok(b!.some((c) => c.add?.set?.name === 'bans_v6'));
  assert.ok(!b!.some((c) => c.delete || c.flush?.set), 'sets that are right keep their elements');
});

test('add() sends one nft call per batchSize elements, each a JSON batch, v4 and v6 to their sets', async () => {
  const nft = recorder(() => ok());
  const bans = [
    { target: '198.51.100.1', timeoutSeconds: 600 },
    { target: '198.51.100.2', timeoutSeconds: 0 },
    { target: '2001:db8::1', timeoutSeconds: 60 },
    { target: '198.51.100.3', timeoutSeconds: 1.2 },
    { target: '2001:db8::2', timeoutSeconds: 0 },
    { target: '198.51.100.4', timeoutSeconds: 5 },
    { target: '198.51.100.5', timeoutSeconds: 7 },
  ];
  const progress: Array<[number, number]> = [];
  await new Nft({ table: 'gw2', batchSize: 3, run: nft.run }).add(bans, (d, t) => progress.push([d, t]));
  assert.ok(nft.calls.every(isBatch), `only batches, no listing when there is no network: ${nft.calls.map((c) => c.args.join(' '))}`);
  const batches = nft.batches();
  assert.equal(batches.length, 3, 'ceil(7 / 3) nft calls');
  assert.deepEqual(progress, [
    [3, 7],
    [6, 7],
    [7, 7],
  ]);

  const finals = batches.map((b) => {
    const verbs = b.map((c) => Object.keys(c)[0]);
    const adds = b.filter((c) => c.add).length;
    assert.deepEqual(
      verbs,
      [...Array(adds / 2).fill('add'), ...Array(adds / 2).fill('delete'), ...Array(adds / 2).fill('add')],
      'add, delete, add: replaces atomically',
    );
    for (const c of b) assert.equal(Object.values(c)[0] && (Object.values(c)[0] as J).element.table, 'gw2');
    // the last third carries the timeouts
    return elements(b.slice((2 * b.length) / 3), 'add');
  });
  const all = new Map<string, J[]>();
  for (const f of finals) for (const [k, v] of f) all.set(k, [...(all.get(k) ?? []), ...v]);
  assert.deepEqual([...all.keys()].sort(), ['bans_v4', 'bans_v6']);
  assert.deepEqual(all.get('bans_v4'), [
    { elem: { val: '198.51.100.1', timeout: 600 } },
    '198.51.100.2',
    { elem: { val: '198.51.100.3', timeout: 2 } },
    { elem: { val: '198.51.100.4', timeout: 5 } },
    { elem: { val: '198.51.100.5', timeout: 7 } },
  ]);
  assert.deepEqual(all.get('bans_v6'), [{ elem: { val: '2001:db8::1', timeout: 60 } }, '2001:db8::2'], 'permanent means no timeout at all');
  for (const b of batches) {
    const n = new Set([...elements(b, 'delete').values()].flat().map((e) => JSON.stringify(e))).size;
    assert.ok(n <= 3, `at most batchSize distinct elements per call, got ${n}`);
  }
});

test('add() puts networks in the interval sets as prefixes, and the last duplicate wins', async () => {
  const nft = recorder((c) =>
    c.args[2] === 'set'
      ? ok(out({ set: { family: 'inet', name: c.args[5], table: 'sentry_xdp', type: 'ipv4_addr', handle: 2, flags: ['interval', 'timeout'] } }))
      : ok(),
  );
  await new Nft({ run: nft.run }).add([
    { target: '203.0.113.0/24', timeoutSeconds: 100 },
    { target: '2001:db8::/48', timeoutSeconds: 0 },
    { target: '203.0.113.77/24', timeoutSeconds: 300 },
    { target: '192.0.2.9/32', timeoutSeconds: 10 },
  ]);
  assert.deepEqual(
    nft.calls.filter((c) => !isBatch(c)).map((c) => c.args.join(' ')),
    ['-j list set inet sentry_xdp nets_v4', '-j list set inet sentry_xdp nets_v6'],
  );
  const [b, ...rest] = nft.batches();
  assert.equal(rest.length, 0);
  const last = elements(b!.slice((2 * b!.length) / 3), 'add');
  assert.deepEqual(last.get('nets_v4'), [{ elem: { val: { prefix: { addr: '203.0.113.0', len: 24 } }, timeout: 300 } }]);
  assert.deepEqual(last.get('nets_v6'), [{ prefix: { addr: '2001:db8::', len: 48 } }]);
  assert.deepEqual(last.get('bans_v4'), [{ elem: { val: '192.0.2.9', timeout: 10 } }], 'a /32 is an address');
});

test('add() names the overlapping networks it refused and still adds the others', async () => {
  const existing = {
    set: {
      family: 'inet',
      name: 'nets_v4',
      table: 'sentry_xdp',
      type: 'ipv4_addr',
      handle: 2,
      flags: ['interval', 'timeout'],
      elem: [{ elem: { val: { prefix: { addr: '10.0.0.0', len: 8 } }, timeout: 600, expires: 500 } }, { prefix: { addr: '192.0.2.0', len: 24 } }],
    },
  };
  const nft = recorder((c) => (c.args[2] === 'set' ? ok(out(existing)) : ok()));
  const bans = ['10.1.0.0/16', '192.0.2.0/24', '198.51.100.128/25', '198.51.100.0/24', '203.0.113.1'].map((target) => ({ target, timeoutSeconds: 60 }));
  const err = await new Nft({ run: nft.run }).add(bans).then(
    () => assert.fail('should throw'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SentryError && err.code === 'KERNEL', String(err));
  assert.match(err.message, /^nft: .*10\.1\.0\.0\/16 \(overlaps 10\.0\.0\.0\/8 already in nets_v4\)/);
  assert.match(err.message, /198\.51\.100\.128\/25 \(overlaps 198\.51\.100\.0\/24 in the same request\)/);
  assert.match(err.message, /refused 2 of 5 bans: .*the other 3 went in/);
  assert.doesNotMatch(err.message, /\n/);
  assert.ok(err.hint);
  const last = elements(nft.batches()[0]!.slice(-2), 'add');
  assert.deepEqual(
    last.get('nets_v4')!.map((e) => `${e.elem.val.prefix.addr}/${e.elem.val.prefix.len}`),
    ['192.0.2.0/24', '198.51.100.0/24'],
    'the identical network is replaced, the wider new one goes in',
  );
  assert.equal(last.get('bans_v4')!.length, 1);
});

test('add() isolates an element the kernel refuses by splitting the batch', async () => {
  const bad = '"addr":"203.0.113.0"';
  const nft = recorder((c) =>
    !isBatch(c)
      ? ok(out({ set: { name: 'nets_v4', table: 'sentry_xdp', type: 'ipv4_addr', flags: ['interval', 'timeout'] } }))
      : c.input.includes(bad)
        ? fail('internal:0:0-0: Error: interval overlaps with an existing one\n')
        : ok(),
  );
  const bans = ['192.0.2.1', '192.0.2.2', '203.0.113.0/24', '198.51.100.0/24'].map((target) => ({ target, timeoutSeconds: 30 }));
  await assert.rejects(
    new Nft({ run: nft.run }).add(bans),
    (e: SentryError) => e.code === 'KERNEL' && /203\.0\.113\.0\/24 \(interval overlaps with an existing one\)/.test(e.message),
  );
  const added = nft
    .batches()
    .filter((b) => !JSON.stringify(b).includes(bad))
    .flatMap((b) => [...elements(b, 'delete').values()].flat());
  assert.deepEqual(added.map((e) => (typeof e === 'string' ? e : `${e.prefix.addr}/${e.prefix.len}`)).sort(), ['192.0.2.1', '192.0.2.2', '198.51.100.0/24']);
});

test('remove() deletes in one call when all are present, and looks them up when some are not', async () => {
  const fast = recorder(() => ok());
  assert.equal(await new Nft({ run: fast.run }).remove(['192.0.2.1', '2001:db8::/48']), 2);
  assert.equal(fast.calls.length, 1);
  assert.deepEqual(Object.keys(fast.batches()[0]![0]!), ['delete']);

  const listing: Record<string, J> = {
    bans_v4: {
      set: { name: 'bans_v4', table: 'sentry_xdp', type: 'ipv4_addr', elem: [{ elem: { val: '192.0.2.1', timeout: 60, expires: 50 } }, '192.0.2.3'] },
    },
    nets_v4: { set: { name: 'nets_v4', table: 'sentry_xdp', type: 'ipv4_addr', elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }] } },
  };
  const slow = recorder((c) => {
    if (c.args[2] === 'set') return ok(out(listing[c.args[5]!]));
    if (JSON.parse(c.input).nftables.length === 2)
      return fail('internal:0:0-0: Error: element does not exist\n\ninternal:0:0-0: Error: Could not process rule: No such file or directory\n');
    return ok();
  });
  assert.equal(await new Nft({ run: slow.run }).remove(['192.0.2.1', '192.0.2.2', '10.0.0.0/8', '10.0.0.0/9']), 2);
  const [tried, done] = slow.batches();
  assert.equal(tried!.length, 2);
  assert.deepEqual(
    done!.map((c) => Object.keys(c)[0]),
    ['add', 'add', 'delete', 'delete'],
    'present ones are re-added then deleted, so one expiring meanwhile cannot fail the batch',
  );
  assert.deepEqual(
    elements(done!, 'delete'),
    new Map<string, J[]>([
      ['bans_v4', ['192.0.2.1']],
      ['nets_v4', [{ prefix: { addr: '10.0.0.0', len: 8 } }]],
    ]),
  );
});

test('flush() empties the four sets in one batch; drop() deletes only our table', async () => {
  const nft = recorder((c) => (is(c, '-j list tables') ? ok(tables('other', 'gw3')) : ok()));
  const n = new Nft({ table: 'gw3', run: nft.run });
  await n.flush();
  await n.drop();
  const [f, d] = nft.batches();
  assert.deepEqual(
    f!.map((c) => c.flush.set.name),
    ['bans_v4', 'nets_v4', 'bans_v6', 'nets_v6'],
  );
  assert.ok(f!.every((c) => c.flush.set.table === 'gw3' && c.flush.set.family === 'inet'));
  assert.deepEqual(d, [{ delete: { table: { family: 'inet', name: 'gw3' } } }]);

  const none = recorder((c) => (is(c, '-j list tables') ? ok(tables('other')) : ok()));
  await new Nft({ table: 'gw3', run: none.run }).drop();
  await new Nft({ table: 'gw3', run: none.run }).flush();
  assert.equal(none.batches().length, 0, 'nothing to do when the table is not there');
});

test('list() reads every element form nft prints', async () => {
  const set = (name: string, elem: J[]) => ({ set: { family: 'inet', name, table: 'sentry_xdp', type: 'x', handle: 1, flags: ['timeout'], elem } });
  const nft = recorder((c) =>
    is(c, '-j list tables')
      ? ok(tables('sentry_xdp'))
      : ok(
          out(
            { table: { family: 'inet', name: 'sentry_xdp', handle: 1 } },
            set('bans_v4', [{ elem: { val: '192.0.2.1', timeout: 600, expires: 599 } }, '192.0.2.2']),
            set('bans_v6', [{ elem: { val: '2001:db8::1', timeout: 60, expires: 12 } }]),
            set('nets_v4', [{ elem: { val: { prefix: { addr: '10.0.0.0', len: 8 } }, timeout: 30, expires: 3 } }, { prefix: { addr: '192.0.2.0', len: 24 } }]),
            set('nets_v6', [{ prefix: { addr: '2001:db8::', len: 48 } }]),
            set('not_ours', ['1.1.1.1']),
            { chain: { family: 'inet', table: 'sentry_xdp', name: 'prerouting' } },
          ),
        ),
  );
  assert.deepEqual(await new Nft({ run: nft.run }).list(), [
    { target: '192.0.2.1', expiresSeconds: 599 },
    { target: '192.0.2.2', expiresSeconds: null },
    { target: '2001:db8::1', expiresSeconds: 12 },
    { target: '10.0.0.0/8', expiresSeconds: 3 },
    { target: '192.0.2.0/24', expiresSeconds: null },
    { target: '2001:db8::/48', expiresSeconds: null },
  ]);
});

test("errors are one line with what failed, nft's own message and a hint", async () => {
  const nft = recorder((c) => (isBatch(c) ? fail('internal:0:0-0: Error: Could not process rule: Operation not permitted\n\n') : ok(tables())));
  await assert.rejects(new Nft({ run: nft.run }).ensure(), (e: SentryError) => {
    assert.equal(e.code, 'KERNEL');
    assert.equal(e.message, 'nft: creating table inet sentry_xdp failed: Could not process rule: Operation not permitted');
    assert.match(e.hint ?? '', /root/);
    return true;
  });
  const gone = recorder((c) => (isBatch(c) ? fail('internal:0:0-0: Error: Could not process rule: No such file or directory\n') : ok()));
  await assert.rejects(
    new Nft({ run: gone.run }).add([{ target: '192.0.2.1', timeoutSeconds: 1 }]),
    (e: SentryError) =>
      e.code === 'KERNEL' &&
      /^nft: adding 1 element to table inet sentry_xdp failed: Could not process rule: No such file or directory$/.test(e.message) &&
      /missing/.test(e.hint ?? ''),
  );
});

test('bad input is refused before nft runs', async () => {
  const nft = recorder(() => ok());
  const n = new Nft({ run: nft.run });
  await assert.rejects(n.add([{ target: 'example.com', timeoutSeconds: 5 }]), (e: SentryError) => e.code === 'USAGE');
  await assert.rejects(n.add([{ target: '192.0.2.1', timeoutSeconds: -1 }]), (e: SentryError) => e.code === 'USAGE');
  await assert.rejects(n.remove(['1.2.3.4; flush ruleset']), (e: SentryError) => e.code === 'USAGE');
  assert.equal(nft.calls.length, 0);
  assert.throws(
    () => new Nft({ table: 'a b' }),
    (e: SentryError) => e.code === 'USAGE',
  );
  assert.throws(
    () => new Nft({ batchSize: 0 }),
    (e: SentryError) => e.code === 'USAGE',
  );
  await new Nft({ run: nft.run }).add([]);
  assert.equal(nft.calls.length, 0, 'nothing to add, no call');
});

test('a missing nft binary makes available() false and other calls a KERNEL error', async () => {
  const n = new Nft({ nft: '/nonexistent/nft-sentry-test' });
  assert.equal(await n.available(), false);
  await assert.rejects(
    n.exists(),
    (e: SentryError) =>
      e.code === 'KERNEL' && /^nft: cannot run \/nonexistent\/nft-sentry-test: not found$/.test(e.message) && /install nftables/.test(e.hint ?? ''),
  );
  const echo = commandRunner(['cat']);
  assert.deepEqual(await echo([], 'stdin reaches the command'), { stdout: 'stdin reaches the command', stderr: '', exitCode: 0 });
});

test('addAddresses writes one add per batch straight into the set, timeouts only where the ban ends, and refuses anything but an address', async () => {
  const r = recorder(() => ok());
  const n = new Nft({ run: r.run, batchSize: 2 });
  await n.addAddresses('bans_v4', ['192.0.2.1', '192.0.2.2', '192.0.2.3'], [3600, 0, 1.2]);
  const b = r.batches();
  assert.equal(b.length, 2, 'two batches of at most 2');
  assert.deepEqual(b[0], [
    { add: { element: { family: 'inet', table: 'sentry_xdp', name: 'bans_v4', elem: [{ elem: { val: '192.0.2.1', timeout: 3600 } }, '192.0.2.2'] } } },
  ]);
  assert.deepEqual(b[1]![0].add.element.elem, [{ elem: { val: '192.0.2.3', timeout: 2 } }]);
  await assert.rejects(n.addAddresses('bans_v6', ['2001:db8::1"]}'], [0]), (e: SentryError) => e.code === 'USAGE');
});
