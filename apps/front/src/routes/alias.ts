import { MAX_ALIAS, setAlias } from '@danmaku/bilibili';
import { restricted, type FastifyInstance } from '@danmaku/http';
import { ApiError, roomParamsSchema } from '@danmaku/model';
import { guard } from '@danmaku/store';
import type { FrontContext } from '../context.js';

type AliasRequest = { Params: { roomId: string }; Body: { alias: number | null } };

/**
 * A numeric alias for a room, so Bilibili-protocol clients (which pick rooms by number) can
 * reach a room whose id is not one. Streamer of the room or admin.
 */
export async function aliasRoutes(app: FastifyInstance, { store }: FrontContext): Promise<void> {
  await app.register(
    restricted({ role: 'moderator' }, (room) => {
      room.put<AliasRequest>(
        '/v1/rooms/:roomId/alias',
        {
          schema: {
            params: roomParamsSchema,
            body: {
              type: 'object',
              required: ['alias'],
              additionalProperties: false,
              properties: { alias: { anyOf: [{ type: 'integer', minimum: 1, maximum: MAX_ALIAS }, { type: 'null' }] } },
            },
          },
        },
        async (request) => {
          const { roomId } = request.params;
          const result = await guard(() => setAlias(store.write, roomId, request.body.alias));
          if (!result.ok) throw new ApiError(409, 'alias_taken', `Alias ${String(request.body.alias)} belongs to room ${result.takenBy}; pick another number.`);
          return { roomId, alias: result.alias };
        },
      );
    }),
  );
}
