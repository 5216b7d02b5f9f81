import { ApiError } from '@danmaku/model';

export type FilterMode = 'replace' | 'reject';

/**
 * The sensitive-word filter: one case-insensitive regex over the configured words (longest
 * first, so "badword" wins over "bad"). Text is NFKC-normalised first, so full-width letters
 * and compatibility forms do not slip past.
 */
export class WordFilter {
  private regex: RegExp | null = null;
  private words: string[] = [];

  constructor(
    words: readonly string[],
    readonly mode: FilterMode,
  ) {
    this.setWords(words);
  }

  setWords(words: readonly string[]): void {
    const clean = [...new Set(words.map((w) => w.normalize('NFKC').trim().toLowerCase()).filter((w) => w.length > 0))].sort((a, b) => b.length - a.length);
    this.words = clean;
    this.regex = clean.length === 0 ? null : new RegExp(clean.map(escape).join('|'), 'giu');
  }

  get size(): number {
    return this.words.length;
  }

  /** The text to send (masked in replace mode), or a 400 in reject mode. Unchanged when clean. */
  apply(text: string): string {
    if (!this.regex) return text;
    const normal = text.normalize('NFKC');
    this.regex.lastIndex = 0;
    if (!this.regex.test(normal)) return text;
    if (this.mode === 'reject') throw new ApiError(400, 'content_rejected', 'The message contains words this room does not allow.');
    this.regex.lastIndex = 0;
    return normal.replace(this.regex, (m) => '*'.repeat([...m].length));
  }
}

function escape(word: string): string {
  return word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
