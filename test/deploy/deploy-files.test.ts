/**
 * The files under deploy/, checked without Docker or systemd (no container registry is reachable
 * here): they parse, name files that exist in the repository, agree with each other on every path,
 * port, host and variable, and what they tell the runner is what the real runner accepts: the
 * image's ext-plugin.cmd arguments start the real CLI with the demo plugin, and the demo route's
 * confs give the documented result through the gateway simulator.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { MAX_SOCKET_PATH_BYTES, resolveOptions } from '../../src/options.js';
import { GatewaySimulator, routeConf } from '../support/gateway.js';
import { RunnerProcess } from '../support/runner-process.js';

/** This file runs as .build/test/deploy/deploy-files.test.js. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(REPO, 'deploy');
const EXT_PLUGIN_PHASES = ['ext-plugin-pre-req', 'ext-plugin-post-req', 'ext-plugin-post-resp'] as const;

type Json = Record<string, any>;

function read(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** A YAML file as plain data; any error or warning (a duplicate key, a bad indent) fails the test. */
function readYaml(path: string): Json {
  const doc = parseDocument(read(path), { prettyErrors: true, uniqueKeys: true });
  assert.deepEqual([...doc.errors, ...doc.warnings].map(String), [], `${path} parses as YAML`);
  const data = doc.toJS() as unknown;
  assert.ok(data !== null && typeof data === 'object' && !Array.isArray(data), `${path} is a YAML mapping`);
  return data as Json;
}

const pkg = JSON.parse(read('package.json')) as {
  name: string;
  engines: { node: string };
  bin: Record<string, string>;
  files: string[];
};

// ---- deploy/Dockerfile ----

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** Index of the build stage (FROM) it belongs to; -1 before the first FROM. */
  readonly stage: number;
}

interface Copy {
  readonly from: string | null;
  readonly sources: string[];
  readonly dest: string;
  readonly stage: number;
}

/** Instructions with continuation lines joined and comments (also `# syntax=`) dropped. */
function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment between continuation lines
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const [keyword, ...rest] = full.split(/\s+/);
    if (keyword!.toUpperCase() === 'FROM') stage++;
    out.push({ keyword: keyword!.toUpperCase(), args: rest.join(' '), stage });
  }
  assert.equal(pending, '', 'the Dockerfile does not end inside a continuation line');
  return out;
}

function dockerfile() {
  const instructions = dockerInstructions(read('deploy/Dockerfile'));
  const argDefaults = new Map<string, string>();
  for (const i of instructions) {
    if (i.keyword !== 'ARG' || i.stage !== -1) continue;
    const [name, value] = i.args.split('=', 2);
    if (value !== undefined) argDefaults.set(name!, value);
  }
  const expand = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => argDefaults.get((a ?? b)!) ?? '');
  const stages = instructions
    .filter((i) => i.keyword === 'FROM')
    .map((i) => {
      const [image, as, name] = i.args.split(/\s+/);
      return { image: expand(image!), name: as?.toUpperCase() === 'AS' ? name! : null };
    });
  const copies: Copy[] = instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      let from: string | null = null;
      while (words[0]!.startsWith('--')) {
        const flag = words.shift()!;
        if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
      }
      assert.ok(!words[0]!.startsWith('['), `COPY in JSON form is not used (${i.args})`);
      const dest = words.pop()!;
      return { from, sources: words, dest, stage: i.stage };
    });
  const users = instructions.filter((i) => i.keyword === 'USER' && i.stage === stages.length - 1).map((i) => i.args);
  const runs = instructions.filter((i) => i.keyword === 'RUN');
  return { instructions, stages, copies, users, runs };
}

/** Where the image puts node and the runner's CLI, as the Dockerfile says. */
function imagePaths() {
  const df = dockerfile();
  const finalStage = df.stages.length - 1;
  const install = df.runs.map((r) => /npm install --global --prefix (\S+)/.exec(r.args)).find((m) => m !== null);
  assert.ok(install, 'the build stage installs the packed runner with npm install --global --prefix');
  const prefix = install[1]!;
  const node = df.copies.find((c) => c.stage === finalStage && c.from !== null && c.sources.includes('/usr/local/bin/node'));
  assert.ok(node, 'the final stage copies the node binary from the Node.js stage');
  return { df, prefix, node: node.dest, cli: posix.join(prefix, 'lib/node_modules', pkg.name, pkg.bin[pkg.name]!) };
}

/**
 * A path inside the image, mapped to the repository file the Dockerfile copies there (or that
 * docker-compose mounts there): the same files, so the runner can be started on them here.
 */
function hostPathFor(containerPath: string): string {
  const { df } = imagePaths();
  const finalStage = df.stages.length - 1;
  for (const c of df.copies) {
    if (c.stage !== finalStage || c.from !== null || c.sources.length !== 1) continue;
    if (containerPath === c.dest || containerPath.startsWith(`${c.dest}/`)) return join(REPO, c.sources[0]!, containerPath.slice(c.dest.length));
  }
  throw new Error(`no COPY in the final stage of deploy/Dockerfile puts anything at ${containerPath}`);
}

function dockerignore(): string[] {
  return read('deploy/Dockerfile.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

// ---- deploy/docker-compose.yml ----

function compose(): Json {
  return readYaml('deploy/docker-compose.yml');
}

/** Short-syntax volumes `SOURCE:TARGET[:MODE]` of a service. */
function volumesOf(service: Json): Array<{ source: string; target: string }> {
  return ((service.volumes ?? []) as string[]).map((v) => {
    assert.equal(typeof v, 'string', 'volumes use the short syntax');
    const [source, target] = v.split(':');
    return { source: source!, target: target! };
  });
}

function isBindMount(source: string): boolean {
  return source.startsWith('.') || source.startsWith('/');
}

// ---- deploy/systemd/apisix-node-runner.service ----

/** systemd unit files: `[Section]`, `Key=Value` (a key may repeat), `#`/`;` comments. */
function readUnit(path: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const [n, raw] of read(path).split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv && current, `${path}:${n + 1} is a Key=Value line inside a section: ${JSON.stringify(raw)}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

function one(section: Map<string, string[]> | undefined, key: string): string {
  const values = section?.get(key) ?? [];
  assert.equal(values.length, 1, `exactly one ${key}=`);
  return values[0]!;
}

/** The arguments after `run`, with each `--plugins PATH` replaced by `map(PATH)`. */
function runArgs(argv: readonly string[], map: (path: string) => string): string[] {
  const run = argv.indexOf('run');
  assert.ok(run >= 0, `the argv runs "run": ${argv.join(' ')}`);
  const args = argv.slice(run + 1);
  return args.map((a, i) => (args[i - 1] === '--plugins' ? map(a) : a));
}

describe('deploy/Dockerfile', () => {
  test('extends the official APISIX image and takes node from an official Node.js image that satisfies package.json engines', () => {
    const { stages, users } = dockerfile();
    assert.match(stages.at(-1)!.image, /^apache\/apisix:\d+\.\d+\.\d+-debian$/);
    const node = stages.find((s) => s.image.startsWith('node:'));
    assert.ok(node, 'a stage FROM node:...');
    const major = Number(/^node:(\d+)/.exec(node.image)![1]);
    const required = Number(/^>=\s*(\d+)/.exec(pkg.engines.node)![1]);
    assert.ok(major >= required, `${node.image} against engines ${pkg.engines.node}`);
    // The APISIX image runs as "apisix"; the derived image must not leave it running as root.
    assert.equal(users.at(-1), 'apisix');
  });

  test('every COPY source exists in the build context (the repository root) and is not dockerignored', () => {
    const { copies, stages } = dockerfile();
    const names = new Set(stages.map((s) => s.name).filter((n) => n !== null));
    const ignored = dockerignore();
    for (const copy of copies) {
      if (copy.from !== null) {
        assert.ok(names.has(copy.from), `COPY --from=${copy.from} names a build stage`);
        continue;
      }
      for (const source of copy.sources) {
        assert.ok(existsSync(join(REPO, source)), `COPY source ${source} exists`);
        assert.ok(!ignored.includes(source.split('/')[0]!), `COPY source ${source} is not excluded by Dockerfile.dockerignore`);
      }
    }
  });

  test('the build stage copies everything package.json "files" packs (dist/ it builds itself)', () => {
    const { copies, stages } = dockerfile();
    const build = stages.findIndex((s) => s.name === 'build');
    assert.ok(build >= 0, 'a stage named build');
    const copied = new Set(copies.filter((c) => c.stage === build && c.from === null).flatMap((c) => c.sources));
    const outDir = (JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    for (const entry of pkg.files) {
      if (entry === outDir) continue;
      assert.ok(copied.has(entry), `the build stage copies ${entry} before npm pack`);
    }
    for (const source of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json', 'src']) {
      assert.ok(copied.has(source), `the build stage copies ${source}`);
    }
  });

  test('the final stage copies the installed runner from the build stage to the same prefix', () => {
    const { df, prefix } = imagePaths();
    const finalStage = df.stages.length - 1;
    assert.ok(
      df.copies.some((c) => c.stage === finalStage && c.from === 'build' && c.sources.includes(prefix) && c.dest === prefix),
      `COPY --from=build ${prefix} ${prefix}`,
    );
  });
});

describe('deploy/apisix/config.yaml', () => {
  test('ext-plugin.cmd runs the node and cli.js paths the Dockerfile installs, without a shell', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const { node, cli } = imagePaths();
    const cmd = config['ext-plugin']?.cmd as unknown;
    assert.ok(Array.isArray(cmd) && cmd.every((a) => typeof a === 'string'), 'ext-plugin.cmd is an argv array of strings');
    assert.deepEqual(cmd.slice(0, 3), [node, cli, 'run']);
    // With both, the gateway would hand path_for_test to the runner it starts: cmd alone here.
    assert.equal(config['ext-plugin'].path_for_test, undefined);
    for (const [i, a] of cmd.entries()) if (cmd[i - 1] === '--plugins') assert.ok(isAbsolute(a), `--plugins ${a} is absolute`);
  });

  test('the arguments after "run" are accepted by the runner, with the socket path the gateway picks', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const args = runArgs(config['ext-plugin'].cmd, hostPathFor);
    // The gateway's own choice: unix:<prefix>/conf/apisix-<master pid>.sock, prefix /usr/local/apisix in the image.
    const options = resolveOptions(args, { APISIX_LISTEN_ADDRESS: 'unix:/usr/local/apisix/conf/apisix-4194304.sock' });
    assert.equal(options.listenSource, 'APISIX_LISTEN_ADDRESS');
    assert.ok(options.pluginPaths.length > 0, 'the image loads its plugin folder');
  });

  test('the etcd hosts are services of docker-compose.yml', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const services = compose().services as Json;
    for (const host of config.deployment.etcd.host as string[]) {
      const url = new URL(host);
      assert.ok(url.hostname in services, `etcd host ${host} is a compose service`);
      const advertised = (services[url.hostname].command as string[]).find((a) => a.startsWith('--advertise-client-urls='));
      assert.equal(advertised, `--advertise-client-urls=${url.protocol}//${url.host}`);
    }
  });

  test('every variable docker-compose.yml gives APISIX is listed under nginx_config.envs, so the runner sees it', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const envs = (config.nginx_config?.envs ?? []) as string[];
    const given = Object.keys((compose().services.apisix.environment ?? {}) as Json);
    assert.ok(given.length > 0);
    for (const name of given) assert.ok(envs.includes(name), `${name} is in nginx_config.envs`);
  });

  test('the Admin API key in deploy/README.md is the one config.yaml sets', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const keys = (config.deployment.admin.admin_key as Array<{ key: string; role: string }>).filter((k) => k.role === 'admin');
    assert.equal(keys.length, 1);
    assert.match(read('deploy/README.md'), new RegExp(`ADMIN_KEY=${keys[0]!.key}\\b`));
  });
});

describe('deploy/docker-compose.yml', () => {
  test('builds deploy/Dockerfile from the repository root', () => {
    const build = compose().services.apisix.build as Json;
    assert.equal(resolve(DEPLOY, build.context), resolve(REPO));
    assert.ok(existsSync(join(resolve(DEPLOY, build.context), build.dockerfile)), `${build.dockerfile} exists`);
  });

  test('every bind mount exists, named volumes are declared, depends_on names services', () => {
    const doc = compose();
    const services = doc.services as Json;
    for (const [name, service] of Object.entries(services)) {
      for (const { source, target } of volumesOf(service)) {
        assert.ok(isAbsolute(target), `${name}: mount target ${target} is absolute`);
        if (isBindMount(source)) {
          const path = resolve(DEPLOY, source);
          assert.ok(existsSync(path), `${name}: mount source ${source} exists`);
          assert.ok(!relative(REPO, path).startsWith('..'), `${name}: mount source ${source} is inside the repository`);
        } else {
          assert.ok(source in (doc.volumes ?? {}), `${name}: named volume ${source} is declared`);
        }
      }
      for (const dep of Object.keys(service.depends_on ?? {})) assert.ok(dep in services, `${name} depends on a service: ${dep}`);
    }
  });

  test("the apisix service's mounts replace folders the image holds, with the same files", () => {
    for (const { source, target } of volumesOf(compose().services.apisix)) {
      assert.equal(hostPathFor(target), resolve(DEPLOY, source), `${source} is what the Dockerfile copies to ${target}`);
    }
  });

  test('publishes the gateway and Admin API ports on the host loopback only', () => {
    const config = readYaml('deploy/apisix/config.yaml');
    const ports = (compose().services.apisix.ports as string[]).map((p) => {
      const [ip, host, container] = p.split(':');
      return { ip, host: Number(host), container: Number(container) };
    });
    for (const p of ports) assert.equal(p.ip, '127.0.0.1');
    const published = ports.map((p) => p.container);
    assert.ok(published.includes(config.apisix.node_listen), `node_listen ${config.apisix.node_listen} is published`);
    assert.ok(published.includes(9180), 'the Admin API port is published');
  });

  test("the demo route's upstream is the compose upstream service on the port it listens on", () => {
    const route = JSON.parse(read('deploy/apisix/route.json')) as Json;
    const services = compose().services as Json;
    for (const node of Object.keys(route.upstream.nodes)) {
      const [host, port] = node.split(':');
      assert.ok(host! in services, `upstream node ${node} is a compose service`);
      assert.equal(services[host!].environment?.PORT, port);
      for (const { source } of volumesOf(services[host!])) assert.ok(existsSync(resolve(DEPLOY, source)));
    }
  });
});

describe('the image runner, started here on the same files', () => {
  test("ext-plugin.cmd's arguments start the real CLI with the demo plugin; the demo route's confs do what deploy/README.md says", async (t) => {
    const config = readYaml('deploy/apisix/config.yaml');
    const greeting = compose().services.apisix.environment.GREETING as string;
    // Generous bounds: this must pass on a machine busy with other suites (they bound hangs, not speed).
    const runner = await RunnerProcess.start({
      args: runArgs(config['ext-plugin'].cmd, hostPathFor),
      env: { GREETING: greeting },
      readyTimeoutMs: 60_000,
    });
    t.after(() => runner.cleanup());
    const startup = runner.logs().find((l) => String(l.msg).includes('listening on'))!;
    assert.ok((startup.plugins as string[]).includes('greeting'), `the startup line lists the demo plugin: ${String(startup.msg)}`);

    const gw = new GatewaySimulator({ socketPath: runner.socketPath });
    t.after(() => gw.close());
    const route = JSON.parse(read('deploy/apisix/route.json')) as Json;
    const phases = Object.keys(route.plugins).filter((p) => (EXT_PLUGIN_PHASES as readonly string[]).includes(p));
    assert.deepEqual(phases, ['ext-plugin-pre-req', 'ext-plugin-post-resp']);
    const conf = (phase: string) =>
      routeConf(`route#demo#${phase}#1`, (route.plugins[phase].conf as Array<{ name: string; value: string }>).map((e) => [e.name, e.value] as const));

    const req = await gw.httpReqCall(conf('ext-plugin-pre-req'), { path: route.uri, headers: [['host', 'localhost']] });
    assert.ok(req.ok, `pre-req call: ${JSON.stringify(req)}`);
    assert.deepEqual(req.upstreamRequest!.headers['x-greeting'], [greeting]);

    const resp = await gw.httpRespCall(conf('ext-plugin-post-resp'), { status: 200, headers: [['Content-Type', 'application/json']], body: '{}' });
    assert.ok(resp.ok, `post-resp call: ${JSON.stringify(resp)}`);
    assert.ok(resp.clientResponse.headers.some(([n, v]) => n === 'x-via' && v === 'apisix-node-runner'), JSON.stringify(resp.clientResponse.headers));
    assert.ok(resp.clientResponse.headers.some(([n, v]) => n === 'content-type' && v === 'application/json'), 'the upstream headers are kept');

    const stopped = await runner.stop('SIGTERM', 60_000);
    assert.equal(stopped.code, 0);
  });
});

describe('deploy/systemd', () => {
  const UNIT = 'deploy/systemd/apisix-node-runner.service';

  test('the unit has the sections and keys a long-running service needs', () => {
    const unit = readUnit(UNIT);
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    const service = unit.get('Service');
    for (const key of ['Type', 'User', 'Group', 'RuntimeDirectory', 'RuntimeDirectoryMode', 'ExecStart', 'ExecReload', 'Restart', 'KillSignal', 'TimeoutStopSec']) {
      one(service, key);
    }
    assert.equal(one(service, 'KillSignal'), 'SIGTERM');
    assert.match(one(service, 'ExecReload'), /^\/bin\/kill -HUP \$MAINPID$/);
    assert.notEqual(one(service, 'User'), 'root');
    assert.equal(one(unit.get('Install'), 'WantedBy'), 'multi-user.target');
  });

  test('ExecStart: absolute node and cli.js, options the runner accepts, a socket in the RuntimeDirectory the workers can reach', () => {
    const service = readUnit(UNIT).get('Service');
    const execStart = one(service, 'ExecStart');
    assert.doesNotMatch(execStart, /["'\\]/, 'ExecStart needs no quoting (the test splits it on spaces)');
    const argv = execStart.split(/\s+/);
    assert.ok(isAbsolute(argv[0]!) && posix.basename(argv[0]!) === 'node', `${argv[0]} is an absolute node`);
    assert.equal(argv[1], imagePaths().cli, 'the same install prefix as the image (docs/deployment.md installs it there)');
    const options = resolveOptions(runArgs(argv, () => join(DEPLOY, 'plugins')), {});
    assert.equal(options.listenSource, '--listen');
    const runtimeDir = `/run/${one(service, 'RuntimeDirectory')}`;
    assert.equal(posix.dirname(options.listenPath), runtimeDir);
    assert.ok(Buffer.byteLength(options.listenPath) <= MAX_SOCKET_PATH_BYTES);
    // The gateway's workers run as another user (nobody): write on the socket, search on its directory.
    assert.notEqual(options.socketMode & 0o002, 0, 'others may write the socket');
    assert.notEqual(Number.parseInt(one(service, 'RuntimeDirectoryMode'), 8) & 0o001, 0, 'others may search the socket directory');
    const stopSeconds = Number(one(service, 'TimeoutStopSec'));
    assert.ok(stopSeconds * 1000 > options.drainMs, 'systemd waits longer than the drain before SIGKILL');
  });

  test("the gateway snippet's path_for_test is the unit's socket, with no cmd beside it", () => {
    const snippet = readYaml('deploy/systemd/config.yaml');
    const argv = one(readUnit(UNIT).get('Service'), 'ExecStart').split(/\s+/);
    const listen = resolveOptions(runArgs(argv, () => join(DEPLOY, 'plugins')), {}).listenPath;
    assert.deepEqual(snippet['ext-plugin'], { path_for_test: listen });
  });
});

test('every deploy/ path the docs name exists', () => {
  const docs = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'deploy/README.md'];
  let named = 0;
  for (const doc of docs) {
    for (const m of read(doc).matchAll(/(?<![\w/.-])deploy\/[\w./-]*[\w]/g)) {
      named++;
      assert.ok(existsSync(join(REPO, m[0].split('/').join(sep))), `${doc} names ${m[0]}, which exists`);
    }
  }
  assert.ok(named > 0, 'the docs name deploy/ files');
});
