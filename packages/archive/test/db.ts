import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { testConfig } from '@danmaku/testkit';

/**
 * A MySQL database of its own for one test file (created by the code under test, on first use),
 * and a drop for the end, so files running in parallel never see each other's rows.
 */
export function testDatabase(prefix = 't'): { url: string; drop(): Promise<void> } {
  const base = new URL(testConfig().mysqlUrl);
  const name = `dmk_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  base.pathname = `/${name}`;
  const url = base.toString();
  return {
    url,
    async drop() {
      const root = new URL(url);
      root.pathname = '/';
      const conn = await mysql.createConnection({ uri: root.toString() });
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}
