// strict_fields.js: unknown-field detection for validate.js. kubernetes-models' validators
// follow the OpenAPI schemas, which allow unknown fields (the API server drops them
// silently, or refuses them under strict field validation); this walks an object along the
// TypeScript declarations (.d.ts) shipped with the same packages and reports every field
// the declared type does not have. Unions and intersections allow the fields of all their
// object members; anything it cannot follow (type aliases, `any`) is not checked further.
'use strict';
const fs = require('fs');
const path = require('path');

function tokenize(src) {
  src = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const re = /\s*("(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|[{}()[\]<>|&;:?,.=])/gy;
  const out = [];
  let m;
  while ((m = re.exec(src)) !== null) out.push(m[1]);
  return out;
}

class Parser {
  constructor(tokens, pos) { this.t = tokens; this.i = pos; }
  peek() { return this.t[this.i]; }
  next() { return this.t[this.i++]; }
  eat(tok) {
    if (this.t[this.i] !== tok) throw new Error(`expected ${tok}, got ${this.t[this.i]}`);
    this.i++;
  }
  type() {  // union
    const alts = [this.inter()];
    while (this.peek() === '|') { this.next(); alts.push(this.inter()); }
    return alts.length === 1 ? alts[0] : { kind: 'union', alts };
  }
  inter() {
    if (this.peek() === '|') this.next();  // a leading | of a multi-line union
    const parts = [this.primary()];
    while (this.peek() === '&') { this.next(); parts.push(this.primary()); }
    return parts.length === 1 ? parts[0] : { kind: 'union', alts: parts };
  }
  primary() {
    const tok = this.next();
    let ty;
    if (tok === '{') ty = this.members();
    else if (tok === '(') { ty = this.type(); this.eat(')'); }
    else if (tok === 'Array' && this.peek() === '<') { this.next(); ty = { kind: 'arr', elem: this.type() }; this.eat('>'); }
    else if (/^[A-Za-z_$]/.test(tok)) {
      ty = /^I[A-Z]/.test(tok) ? { kind: 'ref', name: tok } : { kind: 'any' };
      if (this.peek() === '<') {  // Exclude<...>, Record<...>: not followed
        let depth = 0;
        do { const x = this.next(); if (x === '<') depth++; if (x === '>') depth--; } while (depth > 0);
        ty = { kind: 'any' };
      }
    } else ty = { kind: 'any' };  // string / number literal
    while (this.peek() === '[' && this.t[this.i + 1] === ']') { this.i += 2; ty = { kind: 'arr', elem: ty }; }
    return ty;
  }
  members() {  // after '{'
    const props = {};
    let index = null;
    while (this.peek() !== '}') {
      const tok = this.next();
      if (tok === '[') {  // [key: string]: T
        while (this.next() !== ']');
        this.eat(':');
        index = this.type();
      } else {
        const name = tok.startsWith('"') ? JSON.parse(tok) : tok;
        if (this.peek() === '?') this.next();
        this.eat(':');
        props[name] = this.type();
      }
      if (this.peek() === ';' || this.peek() === ',') this.next();
    }
    this.eat('}');
    return { kind: 'obj', props, index };
  }
}

class Declarations {
  constructor(nodeModules) { this.nodeModules = nodeModules; this.files = new Map(); }

  // The first interface of a .d.ts file, with the file's imports to follow its references.
  load(file) {
    if (this.files.has(file)) return this.files.get(file);
    let decl = null;
    if (fs.existsSync(file)) {
      const src = fs.readFileSync(file, 'utf8');
      const imports = {};
      for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
        for (const part of m[1].split(',')) {
          const [orig, alias] = part.trim().split(/\s+as\s+/);
          if (orig) imports[(alias || orig).trim()] = this.resolve(path.dirname(file), m[2]);
        }
      }
      const head = /export interface \w+(?: extends ([\w, ]+))? \{/.exec(src);
      if (head) {
        const tokens = tokenize(src.slice(head.index + head[0].length - 1));
        const ty = new Parser(tokens, 1).members();
        if (head[1] && head[1].includes('TypeMeta')) {
          ty.props.apiVersion = ty.props.apiVersion || { kind: 'any' };
          ty.props.kind = ty.props.kind || { kind: 'any' };
        }
        decl = { ty, imports };
      }
    }
    this.files.set(file, decl);
    return decl;
  }

  resolve(dir, spec) {
    return spec.startsWith('.') ? path.resolve(dir, spec + '.d.ts')
                                : path.join(this.nodeModules, spec + '.d.ts');
  }

  // The object type of `ty` seen from `file` (refs followed), or null when not an object.
  objectOf(ty, file) {
    if (ty.kind === 'ref') {
      const decl = this.load(file);
      const target = decl && decl.imports[ty.name];
      const d = target && this.load(target);
      return d ? { ty: d.ty, file: target } : null;
    }
    return ty.kind === 'obj' ? { ty, file } : null;
  }
}

// Every field of `value` that `ty` (declared in `file`) does not declare, as paths.
function unknownFields(decls, value, ty, file, where, out) {
  if (value === null || typeof value !== 'object') return;
  if (ty.kind === 'arr') {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(decls, v, ty.elem, file, `${where}[${i}]`, out));
    return;
  }
  if (Array.isArray(value)) return;
  const alts = [];
  const flatten = (t, f) => {
    if (t.kind === 'union') t.alts.forEach((a) => flatten(a, f));
    else {
      const o = decls.objectOf(t, f);
      if (o) alts.push(o);
      else if (t.kind === 'any' || t.kind === 'ref') alts.push(null);  // not followed
    }
  };
  flatten(ty, file);
  if (alts.length === 0 || alts.includes(null)) return;
  for (const [key, v] of Object.entries(value)) {
    const owners = alts.filter((a) => key in a.ty.props);
    if (owners.length) {
      for (const o of owners) unknownFields(decls, v, o.ty.props[key], o.file, `${where}.${key}`, out);
    } else {
      const idx = alts.find((a) => a.ty.index);
      if (idx) unknownFields(decls, v, idx.ty.index, idx.file, `${where}.${key}`, out);
      else out.push(`${where}.${key}`);
    }
  }
}

module.exports = { Declarations, unknownFields };
