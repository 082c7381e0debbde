/**
 * A real single-node Apache Kafka broker (KRaft, combined broker+controller) for Clientele's tests
 * and local runs, without Docker: the jars come from Maven (see pom.xml), the JVM is the machine's.
 *
 * `startBroker()` resolves the jars (offline when Maven's cache has them), picks free loopback
 * ports, writes server.properties, formats storage on first use, starts java and answers once the
 * broker logged that it started and a client could describe the cluster. Starting again with the
 * same `dataDir` reuses its ports and its formatted storage, so a stopped broker comes back with
 * the topics and offsets it had.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';

export interface BrokerOptions {
  /** where storage, config and the broker log live; default: a new temporary folder */
  dataDir?: string;
  /** client (PLAINTEXT) port; default: the one this dataDir used before, else a free one */
  port?: number;
  /** KRaft controller port; default: the one this dataDir used before, else a free one */
  controllerPort?: number;
  /** JVM heap in MiB; default 384 */
  heapMb?: number;
  /** largest record batch the broker accepts; default 4 MiB (tests send > 1 MB poison messages) */
  messageMaxBytes?: number;
  /** how long to wait for jars + format + start; default 10 minutes (first Maven resolution) */
  startTimeoutMs?: number;
  /** keep running after this node process exits (kafka-up.sh); default false */
  detached?: boolean;
}

export interface RunningBroker {
  /** bootstrap address for clients, `127.0.0.1:<port>` */
  readonly brokers: string;
  readonly pid: number;
  readonly port: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  /** the broker's own log (stdout and stderr of the JVM) */
  readonly logFile: string;
  /** SIGTERM (controlled shutdown), SIGKILL after 30 s; resolves once the process is gone */
  stop(): Promise<void>;
}

// kafka-up.sh runs a compiled copy from elsewhere and says where this folder is
const HERE = process.env.CLIENTELE_KAFKA_HOME ?? __dirname;
const POM = join(HERE, 'pom.xml');
const CACHE = join(HERE, '.cache');
const READY_LINE = 'Kafka Server started';
const STATE_FILE = 'clientele-broker.json';

interface BrokerState {
  port: number;
  controllerPort: number;
  clusterId: string;
}

export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const deadline = Date.now() + (options.startTimeoutMs ?? 600_000);
  const classpath = resolveJars();
  const dataDir = options.dataDir ?? join(tmpdir(), `clientele-kafka-${randomBytes(4).toString('hex')}`);
  mkdirSync(dataDir, { recursive: true });
  try {
    return await launch(options, classpath, dataDir, deadline);
  } catch (err) {
    // a temporary folder of our own making is useless once start-up failed
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(options: BrokerOptions, classpath: string, dataDir: string, deadline: number): Promise<RunningBroker> {

  const previous = readState(dataDir);
  const state: BrokerState = {
    port: options.port ?? previous?.port ?? (await freePort()),
    controllerPort: options.controllerPort ?? previous?.controllerPort ?? (await freePort()),
    clusterId: previous?.clusterId ?? newClusterId(),
  };
  const propertiesFile = join(dataDir, 'server.properties');
  const log4jFile = join(dataDir, 'log4j.properties');
  writeFileSync(propertiesFile, serverProperties(dataDir, state, options.messageMaxBytes ?? 4 * 1024 * 1024));
  writeFileSync(log4jFile, LOG4J);

  const heap = options.heapMb ?? 384;
  const jvmArgs = [
    `-Xmx${heap}m`,
    `-Xms${Math.min(heap, 128)}m`,
    // two cores are shared with other work: a serial collector and fewer compiler threads keep the broker light
    '-XX:+UseSerialGC',
    '-XX:CICompilerCount=2',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${log4jFile}`,
    '-cp',
    classpath,
  ];

  if (!existsSync(join(dataDir, 'logs', 'meta.properties'))) {
    const format = spawnSync(
      javaBin(),
      [...jvmArgs, 'kafka.tools.StorageTool', 'format', '-t', state.clusterId, '-c', propertiesFile],
      { encoding: 'utf8', timeout: Math.max(deadline - Date.now(), 1000) },
    );
    if (format.status !== 0) {
      throw new Error(`formatting Kafka storage in ${dataDir} failed: ${format.error?.message ?? ''}${format.stdout ?? ''}${format.stderr ?? ''}`);
    }
  }
  writeFileSync(join(dataDir, STATE_FILE), JSON.stringify(state));

  const logFile = join(dataDir, 'broker.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(javaBin(), [...jvmArgs, 'kafka.Kafka', propertiesFile], {
    stdio: ['ignore', fd, fd],
    detached: options.detached ?? false,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error('could not start java for the Kafka broker (is a JDK 17+ on PATH?)');
  const pid = child.pid;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  if (options.detached) child.unref();

  const brokers = `127.0.0.1:${state.port}`;
  const broker: RunningBroker = {
    brokers,
    pid,
    port: state.port,
    controllerPort: state.controllerPort,
    dataDir,
    logFile,
    stop: async () => {
      if (exited) return;
      signal(pid, 'SIGTERM');
      const killer = setTimeout(() => signal(pid, 'SIGKILL'), 30_000);
      await exit;
      clearTimeout(killer);
    },
  };

  try {
    await waitForLine(logFile, READY_LINE, () => exited, deadline);
    await waitForCluster(brokers, deadline);
  } catch (err) {
    await broker.stop();
    throw new Error(`${(err as Error).message}\n--- last lines of ${logFile} ---\n${tail(logFile, 30)}`);
  }
  return broker;
}

/** Stops a broker started elsewhere (kafka-down.sh) by its PID; resolves once it is gone. */
export async function stopBrokerByPid(pid: number, timeoutMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) signal(pid, 'SIGKILL');
    await sleep(200);
  }
}

/** Classpath of the broker's jars, resolved once per pom.xml content and reused offline afterwards. */
export function resolveJars(): string {
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex').slice(0, 12);
  const jarsDir = join(CACHE, `jars-${pomHash}`);
  if (!existsSync(jarsDir)) {
    mkdirSync(CACHE, { recursive: true });
    const staging = `${jarsDir}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    const goal = ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${staging}`];
    // offline first: after one online resolution Maven's local repository has everything
    let run = spawnSync('mvn', ['-o', ...goal], { encoding: 'utf8' });
    if (run.status !== 0) run = spawnSync('mvn', goal, { encoding: 'utf8' });
    if (run.status !== 0) {
      throw new Error(
        `resolving the Kafka broker jars with Maven failed (${run.error?.message ?? `exit ${String(run.status)}`}); ` +
          `Java 17+ and Maven with access to Maven Central are needed.\n${run.stdout}${run.stderr}`,
      );
    }
    try {
      renameSync(staging, jarsDir);
    } catch {
      // another process resolved the same jars at the same time: theirs are as good as ours
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const jars = readdirSync(jarsDir).filter((f) => f.endsWith('.jar'));
  if (!jars.some((f) => f.startsWith('kafka_2.13-'))) throw new Error(`no Kafka jar in ${jarsDir}: delete it and retry`);
  return jars.map((f) => join(jarsDir, f)).join(':');
}

function serverProperties(dataDir: string, s: BrokerState, messageMaxBytes: number): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${s.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${s.port},CONTROLLER://127.0.0.1:${s.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${s.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': join(dataDir, 'logs'),
    // topics are created explicitly: auto-creation races give LEADER_NOT_AVAILABLE to clients
    'auto.create.topics.enable': false,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    // one node: internal topics must not ask for three replicas or they are never created
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 3,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    'num.network.threads': 2,
    'num.io.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'background.threads': 2,
    'log.cleaner.threads': 1,
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    'message.max.bytes': messageMaxBytes,
    'replica.fetch.max.bytes': messageMaxBytes,
    'log.segment.bytes': 64 * 1024 * 1024,
    'log.retention.check.interval.ms': 300_000,
    'delete.topic.enable': true,
  };
  return Object.entries(props)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('\n')
    .concat('\n');
}

const LOG4J = [
  'log4j.rootLogger=INFO, stdout',
  'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
  'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
  'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
  // the chattiest loggers; their warnings and errors still show
  'log4j.logger.state.change.logger=WARN',
  'log4j.logger.kafka.log=WARN',
  'log4j.logger.org.apache.kafka.storage=WARN',
  'log4j.logger.org.apache.kafka.controller=WARN',
  'log4j.logger.org.apache.kafka.raft=WARN',
  'log4j.logger.org.apache.kafka.image=WARN',
  'log4j.logger.org.apache.kafka.metadata=WARN',
  'log4j.logger.kafka.server.metadata=WARN',
  'log4j.logger.kafka.coordinator=WARN',
  'log4j.logger.org.apache.kafka.coordinator=WARN',
  'log4j.logger.kafka.cluster=WARN',
  'log4j.logger.kafka.server.ReplicaFetcherManager=WARN',
  '',
].join('\n');

function readState(dataDir: string): BrokerState | undefined {
  const file = join(dataDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as BrokerState;
}

/** 22 base64url characters (16 random bytes); the storage tool refuses ids starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function javaBin(): string {
  return process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

async function waitForLine(file: string, line: string, hasExited: () => boolean, deadline: number): Promise<void> {
  for (;;) {
    if (existsSync(file) && readFileSync(file, 'utf8').includes(line)) return;
    if (hasExited()) throw new Error('the Kafka broker exited during start-up');
    if (Date.now() > deadline) throw new Error(`the Kafka broker did not log "${line}" in time`);
    await sleep(100);
  }
}

async function waitForCluster(brokers: string, deadline: number): Promise<void> {
  const admin = new Kafka({ clientId: 'clientele-broker-probe', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
  let lastError: unknown;
  try {
    while (Date.now() < deadline) {
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length > 0) return;
      } catch (err) {
        lastError = err;
      }
      await sleep(200);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  throw new Error(`the Kafka broker at ${brokers} did not answer describeCluster (${String(lastError)})`);
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
