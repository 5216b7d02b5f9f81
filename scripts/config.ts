// Prints every setting with its default and meaning (Markdown): npm run config
import { settingsTable } from '@danmaku/config';

process.stdout.write(settingsTable() + '\n');
