export { pagesPlugin, pageDirectives, type PagesOptions } from './plugin.js';
