// `npm run migrate`: brings the MySQL archive (MYSQL_URL) to the newest schema version.
import { Archive, schemaVersion } from '@danmaku/archive';
import { loadConfig } from '@danmaku/config';

const config = loadConfig();
const archive = new Archive(config.mysqlUrl);
try {
  await archive.ready();
  process.stdout.write(`archive schema at version ${await schemaVersion(archive.pool)} (${new URL(config.mysqlUrl).pathname.slice(1)})\n`);
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await archive.close();
}
