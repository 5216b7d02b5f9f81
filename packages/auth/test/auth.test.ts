import { afterEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSigner } from 'fast-jwt';
import { createAuth } from '@danmaku/auth';
import { ApiError } from '@danmaku/model';

const SECRET = 'a test secret of a decent length for HS256';
const refusedWith = (code: string) => (err: unknown) => err instanceof ApiError && err.status === 401 && err.code === code;

afterEach(() => mock.timers.reset());

test('a token seen before answers from memory, frozen, and the same claims as a fresh check', () => {
  const auth = createAuth(SECRET);
  const token = auth.sign({ sub: 'u1', name: 'Ann', role: 'streamer', rooms: ['r1'] });
  const first = auth.fromHeader(`Bearer ${token}`);
  const again = auth.fromHeader(`Bearer ${token}`);
  assert.deepEqual(first, { id: 'u1', name: 'Ann', role: 'streamer', rooms: ['r1'] });
  assert.equal(again, first);
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first?.rooms));
  assert.deepEqual(createAuth(SECRET).verify(token), first);
});

test('a remembered token still expires on time', () => {
  const now = Date.now();
  mock.timers.enable({ apis: ['Date'], now });
  const auth = createAuth(SECRET);
  const token = auth.sign({ sub: 'u2', name: 'Bo', role: 'viewer' }, 60);
  assert.equal(auth.verify(token).id, 'u2');
  mock.timers.tick(59_000);
  assert.equal(auth.verify(token).id, 'u2');
  mock.timers.tick(2_000);
  assert.throws(() => auth.verify(token), refusedWith('token_expired'));
});

test('refusals are never remembered as passes: bad signature, bad claims, bad header', () => {
  const auth = createAuth(SECRET);
  const forged = createSigner({ key: 'another secret entirely, also long enough', algorithm: 'HS256' })({ sub: 'u3', name: 'x', role: 'admin' });
  for (let i = 0; i < 2; i++) assert.throws(() => auth.verify(forged), refusedWith('invalid_token'));
  const noRole = createSigner({ key: SECRET, algorithm: 'HS256' })({ sub: 'u4', name: 'x', role: 'king' });
  for (let i = 0; i < 2; i++) assert.throws(() => auth.verify(noRole), refusedWith('invalid_token'));
  assert.throws(() => auth.fromHeader('Basic abc'), refusedWith('invalid_token'));
  assert.equal(auth.fromHeader(undefined), null);
});
