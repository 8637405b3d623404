<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" hasScaleBasedVisibilityFlag="0" minScale="1e+08" styleCategories="AllStyleCategories" maxScale="0">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal mode="0" enabled="0" fetchMode="0">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <customproperties>
    <Option type="Map">
      <Option name="identify/format" type="QString" value="Value"/>
    </Option>
  </customproperties>
  <pipe-data-defined-properties>
    <Option type="Map">
      <Option name="name" type="QString" value=""/>
      <Option name="properties"/>
      <Option name="type" type="QString" value="collection"/>
    </Option>
  </pipe-data-defined-properties>
  <pipe>
    <provider>
      <resampling zoomedInResamplingMethod="nearestNeighbour" enabled="false" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer classificationMax="320" type="singlebandpseudocolor" band="1" classificationMin="280" opacity="1" alphaBand="-1" nodataColor="">
      <minMaxOrigin>
        <limits>CumulativeCut</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader clip="0" maximumValue="320" classificationMode="1" minimumValue="280" labelPrecision="1" colorRampType="INTERPOLATED">
          <colorramp name="[source]" type="gradient">
            <Option type="Map">
              <Option name="color1" type="QString" value="69,117,180,255"/>
              <Option name="color2" type="QString" value="215,48,39,255"/>
              <Option name="discrete" type="QString" value="0"/>
              <Option name="rampType" type="QString" value="gradient"/>
              <Option name="stops" type="QString" value="0.166667;145,191,219,255:0.333333;224,243,248,255:0.5;255,255,191,255:0.666667;254,224,144,255:0.833333;252,141,89,255"/>
            </Option>
            <prop v="69,117,180,255" k="color1"/>
            <prop v="215,48,39,255" k="color2"/>
            <prop v="0" k="discrete"/>
            <prop v="gradient" k="rampType"/>
            <prop v="0.166667;145,191,219,255:0.333333;224,243,248,255:0.5;255,255,191,255:0.666667;254,224,144,255:0.833333;252,141,89,255" k="stops"/>
          </colorramp>
          <item label="280.0 K" alpha="255" value="280" color="#4575b4"/>
          <item label="286.7 K" alpha="255" value="286.6666666666667" color="#91bfdb"/>
          <item label="293.3 K" alpha="255" value="293.3333333333333" color="#e0f3f8"/>
          <item label="300.0 K" alpha="255" value="300" color="#ffffbf"/>
          <item label="306.7 K" alpha="255" value="306.6666666666667" color="#fee090"/>
          <item label="313.3 K" alpha="255" value="313.3333333333333" color="#fc8d59"/>
          <item label="320.0 K" alpha="255" value="320" color="#d73027"/>
          <rampLegendSettings suffix=" K" minimumLabel="" useContinuousLegend="1" maximumLabel="" prefix="" direction="0" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option name="decimal_separator" type="QChar" value=""/>
                <Option name="decimals" type="int" value="1"/>
                <Option name="rounding_type" type="int" value="0"/>
                <Option name="show_plus" type="bool" value="false"/>
                <Option name="show_thousand_separator" type="bool" value="true"/>
                <Option name="show_trailing_zeros" type="bool" value="true"/>
                <Option name="thousand_separator" type="QChar" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast contrast="0" brightness="0" gamma="1"/>
    <huesaturation colorizeOn="0" colorizeGreen="128" saturation="0" invertColors="0" colorizeBlue="128" grayscaleMode="0" colorizeRed="255" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
