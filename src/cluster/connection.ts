// Where the queue lives: `--queue redis://[user:pass@]host:port[/db][?queue=NAME]` (or rediss://
// for TLS), turned into ioredis connections that reconnect on their own, so that a Redis restart
// or a network blip is waited out rather than fatal.
import { Redis, type RedisOptions } from 'ioredis';

/** The BullMQ queue every selab command uses unless the URL names another (`?queue=NAME`). */
export const DEFAULT_QUEUE = 'selab';

export interface QueueTarget {
  /** The URL with its password masked, for logs and errors. */
  display: string;
  /** The BullMQ queue name. */
  queue: string;
  /** ioredis options: host, port, db, credentials, TLS. */
  options: RedisOptions;
}

const USAGE = 'expected redis://[user:password@]host[:port][/db] or rediss://… (TLS)';

export function parseQueueUrl(text: string): QueueTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--queue ${JSON.stringify(text)}: not a URL; ${USAGE}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`--queue ${JSON.stringify(text)}: ${USAGE}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Error(`--queue ${JSON.stringify(text)}: no host; ${USAGE}`);
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) throw new Error(`--queue ${JSON.stringify(text)}: the database "${dbText}" is not a number; ${USAGE}`);
  const db = dbText === '' ? 0 : Number(dbText);
  for (const key of url.searchParams.keys()) {
    if (key !== 'queue') throw new Error(`--queue ${JSON.stringify(text)}: unknown parameter "${key}" (only ?queue=NAME)`);
  }
  const queue = url.searchParams.get('queue') ?? DEFAULT_QUEUE;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(queue)) throw new Error(`--queue ${JSON.stringify(text)}: queue name "${queue}" must be letters, digits, '.', '_' or '-'`);
  const tls = url.protocol === 'rediss:';
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const auth = username !== '' || password !== '' ? `${username}${password !== '' ? ':***' : ''}@` : '';
  return {
    display: `${url.protocol}//${auth}${url.host}/${db}${queue !== DEFAULT_QUEUE ? `?queue=${queue}` : ''}`,
    queue,
    options: {
      host,
      port,
      db,
      ...(username !== '' ? { username } : {}),
      ...(password !== '' ? { password } : {}),
      ...(tls ? { tls: { servername: host } } : {}),
    },
  };
}

/**
 * A connection that retries every command until Redis answers again (what BullMQ's workers and
 * a coordinator following a long experiment need), reconnecting every 0.25–2 s.
 */
export function connect(target: QueueTarget, name: string): Redis {
  const redis = new Redis({
    ...target.options,
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: 10_000,
    retryStrategy: (times) => Math.min(250 * times, 2000),
  });
  // ioredis reports each failed reconnection as an 'error' event; callers that care listen too.
  redis.on('error', () => undefined);
  return redis;
}

/** Fails with a clear message when Redis does not answer within `timeoutMs`. */
export async function checkReachable(redis: Redis, target: QueueTarget, timeoutMs = 10_000): Promise<void> {
  let lastError: Error | undefined;
  const onError = (e: Error): void => {
    lastError = e;
  };
  redis.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`cannot reach Redis at ${target.display} within ${timeoutMs / 1000} s${lastError ? ` (${lastError.message})` : ''}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    redis.off('error', onError);
  }
}

/** Closes a connection without waiting for a Redis that may be gone. */
export async function disconnect(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
  }
  redis.disconnect();
}
