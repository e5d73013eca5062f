//! `read_image`: lets the model look at an image in the workspace (a screenshot, a chart, a
//! rendered page), within the size limits model providers accept.

use crate::excerpt::human_bytes;
use crate::{Tool, ToolContext, ToolOutput, parse_input, schema_for};
use base64::Engine;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader};
use rswe_protocol::{ImageSource, ToolResultContent};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::io::Cursor;
use std::path::Path;

/// Longest side of an image sent to the model, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 1568;
/// Largest encoded image sent to the model, in bytes (5 MB once base64-encoded).
pub const MAX_IMAGE_BYTES: usize = 3_750_000;

const DESCRIPTION: &str = "Look at an image file in the workspace: PNG, JPEG, GIF or WebP (e.g. a screenshot you \
took, a generated chart). Large images are downscaled to at most 1568 pixels a side.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The image file: relative to the workspace, or absolute inside it.
    path: String,
}

/// The `read_image` tool.
pub struct ReadImageTool {
    schema: Value,
}

impl ReadImageTool {
    pub fn new() -> Self {
        ReadImageTool { schema: schema_for::<Input>() }
    }
}

impl Default for ReadImageTool {
    fn default() -> Self {
        ReadImageTool::new()
    }
}

/// An image ready for the model.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub original: (u32, u32),
    pub size: (u32, u32),
}

fn media_type(format: ImageFormat) -> Option<&'static str> {
    match format {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::Gif => Some("image/gif"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// The largest size with the same aspect ratio whose sides are at most `max_side`.
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    if width <= max_side && height <= max_side {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(width.max(height));
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, max_side);
    (scaled(width), scaled(height))
}

fn encode(image: &DynamicImage, alpha: bool, quality: u8) -> Result<(Vec<u8>, &'static str), String> {
    let mut out = Cursor::new(Vec::new());
    if alpha {
        image.write_to(&mut out, ImageFormat::Png).map_err(|error| error.to_string())?;
        Ok((out.into_inner(), "image/png"))
    } else {
        let rgb = image.to_rgb8();
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, quality)).map_err(|error| error.to_string())?;
        Ok((out.into_inner(), "image/jpeg"))
    }
}

/// An image as the model may receive it: checked, and downscaled and re-encoded when it
/// exceeds the limits. Blocking. Err says what is wrong with it.
pub fn image_for_model(bytes: Vec<u8>) -> Result<ImageSource, String> {
    let prepared = prepare(bytes)?;
    Ok(ImageSource {
        media_type: prepared.media_type.to_string(),
        data: base64::engine::general_purpose::STANDARD.encode(prepared.bytes),
    })
}

/// Checks the format and, when needed, downscales and re-encodes the image so that it fits
/// the limits. Blocking (decoding and encoding take a while for large images).
pub(crate) fn prepare(bytes: Vec<u8>) -> Result<Prepared, String> {
    prepare_within(bytes, MAX_IMAGE_SIDE, MAX_IMAGE_BYTES)
}

/// [`prepare`] with other limits.
fn prepare_within(bytes: Vec<u8>, max_side: u32, max_bytes: usize) -> Result<Prepared, String> {
    let format = image::guess_format(&bytes).ok().and_then(|format| media_type(format).map(|media| (format, media)));
    let Some((format, media)) = format else {
        return Err("it is not a PNG, JPEG, GIF or WebP image (the formats read_image supports)".to_string());
    };
    let reader = ImageReader::with_format(Cursor::new(&bytes), format);
    let (width, height) = reader.into_dimensions().map_err(|error| format!("it is not a valid image: {error}"))?;
    if width <= max_side && height <= max_side && bytes.len() <= max_bytes {
        return Ok(Prepared { media_type: media, bytes, original: (width, height), size: (width, height) });
    }
    let image = image::load_from_memory_with_format(&bytes, format)
        .map_err(|error| format!("it could not be decoded: {error}"))?;
    drop(bytes);
    let mut side = max_side.min(width.max(height));
    let mut alpha = image.color().has_alpha();
    let mut quality = 85u8;
    loop {
        let (w, h) = fit(width, height, side);
        let resized = if (w, h) == (width, height) { image.clone() } else { image.resize(w, h, FilterType::Triangle) };
        let (encoded, media_type) = encode(&resized, alpha, quality)?;
        if encoded.len() <= max_bytes {
            return Ok(Prepared { media_type, bytes: encoded, original: (width, height), size: (w, h) });
        }
        // Too large still: give up transparency first, then quality, then size.
        if alpha {
            alpha = false;
        } else if quality > 60 {
            quality -= 15;
        } else if side > 64 {
            side = side * 3 / 4;
        } else {
            return Err("it cannot be made small enough to send".to_string());
        }
    }
}

#[async_trait::async_trait]
impl Tool for ReadImageTool {
    fn name(&self) -> &str {
        "read_image"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn is_read_only(&self, _input: &Value) -> bool {
        true
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: Input = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let bytes = match context.sandbox.read_file(Path::new(&input.path)).await {
            Ok(bytes) => bytes,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        let file_size = bytes.len();
        let prepared = match tokio::task::spawn_blocking(move || prepare(bytes)).await {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(why)) => return ToolOutput::error(format!("cannot show {}: {why}", input.path)),
            Err(error) => return ToolOutput::error(format!("reading {} failed unexpectedly: {error}", input.path)),
        };
        let (ow, oh) = prepared.original;
        let (w, h) = prepared.size;
        let mut description = format!("{} ({ow}x{oh}, {})", input.path, human_bytes(file_size as u64));
        if prepared.original != prepared.size {
            description.push_str(&format!(
                ", downscaled to {w}x{h} ({}, {})",
                prepared.media_type,
                human_bytes(prepared.bytes.len() as u64)
            ));
        } else if prepared.bytes.len() != file_size {
            description.push_str(&format!(
                ", re-encoded as {} ({})",
                prepared.media_type,
                human_bytes(prepared.bytes.len() as u64)
            ));
        }
        let data = base64::engine::general_purpose::STANDARD.encode(&prepared.bytes);
        ToolOutput {
            content: vec![
                ToolResultContent::Text { text: description },
                ToolResultContent::Image { source: ImageSource { media_type: prepared.media_type.to_string(), data } },
            ],
            ..ToolOutput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_keeping_the_aspect_ratio() {
        assert_eq!(fit(800, 600, 1568), (800, 600));
        assert_eq!(fit(4000, 3000, 1568), (1568, 1176));
        assert_eq!(fit(1000, 10_000, 1568), (157, 1568));
        assert_eq!(fit(100_000, 1, 1568), (1568, 1));
    }

    #[test]
    fn gives_up_transparency_then_quality_then_size_to_fit_the_byte_limit() {
        // Noise does not compress: as a PNG it is far above the (small, for speed) limits here.
        let mut state = 0x2545_f491_u32;
        let noise = image::RgbaImage::from_fn(300, 200, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            image::Rgba(state.to_le_bytes())
        });
        let mut png = Cursor::new(Vec::new());
        noise.write_to(&mut png, ImageFormat::Png).unwrap();
        let png = png.into_inner();
        assert!(png.len() > 200_000);

        let prepared = prepare_within(png.clone(), 400, 100_000).unwrap();
        assert_eq!(prepared.media_type, "image/jpeg");
        assert!(prepared.bytes.len() <= 100_000);
        assert_eq!(prepared.size, (300, 200), "quality alone was enough");

        let prepared = prepare_within(png, 400, 20_000).unwrap();
        assert!(prepared.bytes.len() <= 20_000);
        let (w, h) = prepared.size;
        assert!(w < 300 && (f64::from(w) / f64::from(h) - 1.5).abs() < 0.05, "{:?}", prepared.size);
    }

    #[test]
    fn refuses_other_formats() {
        assert!(prepare(b"%PDF-1.7 not an image".to_vec()).unwrap_err().contains("not a PNG, JPEG, GIF or WebP"));
    }
}
