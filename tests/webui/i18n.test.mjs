// The console's two string tables: the same keys, no empty string, the same {placeholders} in
// both, and every key the code names literally (t('...')) present. The pages test renders
// every page in both languages and catches the keys built at run time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { sourceRoot } from './support/agent.mjs';
import { languages } from './support/browser.mjs';

const webui = process.env.AIBOX_WEBUI_DIR || path.join(sourceRoot, 'webui');
const tables = Object.fromEntries(
  languages.map((lang) => [lang, JSON.parse(fs.readFileSync(path.join(webui, 'i18n', `${lang}.json`), 'utf8'))]),
);

function placeholders(text) {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      return sources(file);
    }
    return /\.(m?js|html)$/.test(entry.name) ? [file] : [];
  });
}

describe('i18n', () => {
  it('both languages have the same keys', () => {
    const [en, zh] = languages.map((lang) => Object.keys(tables[lang]));
    assert.deepEqual(en.filter((k) => !zh.includes(k)), [], 'keys missing from zh-CN.json');
    assert.deepEqual(zh.filter((k) => !en.includes(k)), [], 'keys missing from en.json');
  });

  it('every string is a non-empty text with the same placeholders in both languages', () => {
    for (const lang of languages) {
      for (const [key, text] of Object.entries(tables[lang])) {
        assert.equal(typeof text, 'string', `${lang} ${key} is a string`);
        assert.match(text, /\S/, `${lang} ${key} is not empty`);
      }
    }
    for (const [key, text] of Object.entries(tables.en)) {
      if (key in tables['zh-CN']) {
        assert.deepEqual(placeholders(tables['zh-CN'][key]), placeholders(text), `placeholders of ${key}`);
      }
    }
  });

  it('the zh-CN table is translated', () => {
    const translated = Object.values(tables['zh-CN']).filter((text) => /[\u4e00-\u9fff]/.test(text));
    assert.ok(translated.length > Object.keys(tables['zh-CN']).length / 2,
      `only ${translated.length} of ${Object.keys(tables['zh-CN']).length} zh-CN strings contain Chinese`);
  });

  it('every key named in the code exists', () => {
    const missing = [];
    for (const file of sources(webui)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const match of text.matchAll(/\bt\(\s*(['"])([\w.-]+)\1/g)) {
        if (!(match[2] in tables.en)) {
          missing.push(`${path.relative(webui, file)}: ${match[2]}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });
});
